namespace Lb.Rules

open System
open ConfigReading

/// `[node]`: the name of this lb, reload on change, warm-up.
[<RequireQualifiedAccess>]
module NodeSection =
    module K = Keywords.Node

    /// `[node] reload_on_change`: reload when the config file or a TLS file changes (default false: SIGHUP only).
    let parseReloadOnChange errors (node: Section) : bool =
        optBool errors node K.reloadOnChange.Name |> Option.defaultValue K.reloadOnChange.Default

    /// The longest `[node] warm_up`: it delays the listeners, and the JIT's work is done well within it.
    let maxWarmUp = TimeSpan.FromSeconds 60.0

    /// `[node] warm_up`: for how long, before its listeners open (and so before VRRP can make it master), lb
    /// drives a private copy of its request path on loopback, so the JIT has optimised that path before the first
    /// real request. "0s" (the default) turns it off.
    let parseWarmUp errors (node: Section) : TimeSpan =
        let refuse at (found: string) =
            addError errors (keyword node K.warmUp.Name) at $"{found} is not a warm-up time" "write \"0s\" (off) up to \"60s\", like \"5s\""
            TimeSpan.Zero
        match tryGet node K.warmUp.Name with
        | Some(_, _, TString(s, at)) ->
            match parseDuration s with
            | Some d when d <= maxWarmUp -> d
            | _ -> refuse at $"'{s}'"
        | Some(_, _, other) -> refuse (TomlNode.position other) $"a {TomlNode.kindName other}"
        | None -> K.warmUp.Default

    /// `[node] name`: this load balancer's name in logs and stats (HAProxy `node lb1`), default "lb".
    let parseName errors (node: Section) : string =
        optString errors node K.name.Name |> Option.map fst |> Option.defaultValue K.name.Default

    /// `[node]`: name, reload_on_change, warm_up.
    let parse (root: Section) : NodeConfig * ConfigError list =
        ownErrors <| fun errors ->
        match optTable errors root Keywords.Node.Table with
        | Some node ->
            rejectUnknownKeys errors node K.names
            { Name = parseName errors node
              ReloadOnChange = parseReloadOnChange errors node
              WarmUp = parseWarmUp errors node }
        | None -> { Name = K.name.Default; ReloadOnChange = K.reloadOnChange.Default; WarmUp = K.warmUp.Default }
