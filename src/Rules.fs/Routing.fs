namespace Lb.Rules

open System
open System.Collections.Generic

/// What the shell knows about a request before forwarding a byte of it.
type RequestFacts =
    { IsHttps: bool
      /// The Host header (or HTTP/2 `:authority`), as received.
      Host: string
      Method: string
      /// The request target as received on the wire: `/app1/x?y=1` (Kestrel's RawTarget).
      RawTarget: string
      ClientAddress: string
      /// The client's own X-Forwarded-For, if any.
      ForwardedFor: string option
      /// The request's header field lines, for rules that read headers or cookies (`Snapshot.RulesReadHeaders`);
      /// the shell may pass none when no rule reads them.
      Headers: (string * string) array }

/// A request the shell forwards: to which app, with which path, and the headers to set.
/// A struct, and everything in it is either taken from the request or precomputed in the `Snapshot`, so a
/// routing decision allocates one object (its `Decision.Forward`) for an already-normal path (issue 7). The
/// strings the shell needs only sometimes (backend target, public path, X-Forwarded-*, the response context)
/// are members, built when read.
[<Struct>]
type ForwardPlan =
    { App: AppConfig
      AppIndex: int
      /// The normalised public path and the query as received: `/app1/rest?q`.
      PublicTarget: string
      /// Length of the path part of `PublicTarget` (the query, if any, follows it).
      PathLength: int
      /// Where the backend's target starts in `PublicTarget`: after the app's prefix, or 0 when a rule routed
      /// the request whatever its path.
      BackendStart: int
      /// The public prefix the backend's paths live under (`/app1`, or "" for a rule-routed request).
      Prefix: string
      /// From the request (`RequestFacts`): they make the X-Forwarded-* headers and the response context.
      IsHttps: bool
      PublicHost: string
      ClientAddress: string
      ForwardedFor: string option
      /// `host:port` of every server of the app, lower-case (precomputed per app).
      ServerAuthorities: string array
      /// The rule that let the request through with changes (`rules[0]`, `apps.app1.rules[2]`), if any.
      Rule: string option
      /// `pin`: indexes into `App.Servers` of the only servers that may take the request; empty: any server.
      Pin: int array
      /// Header edits on the request to the backend, in order, after lb's own headers.
      RequestEdits: HeaderEdit array
      /// Header edits on the response to the client, in order, after lb's own rewrites.
      ResponseEdits: HeaderEdit array }

    /// Path and query the backend sees: `/rest?q`.
    member this.BackendTarget =
        if this.BackendStart = 0 then this.PublicTarget else this.PublicTarget.Substring this.BackendStart

    /// Normalised public path: `/app1/rest`.
    member this.PublicPath =
        if this.PathLength = this.PublicTarget.Length then this.PublicTarget
        else this.PublicTarget.Substring(0, this.PathLength)

    /// The query as received (`?` included), or "".
    member this.Query = this.PublicTarget.Substring this.PathLength

    /// The headers lb sets on the request to the backend (X-Forwarded-For, -Proto, -Host, -Prefix).
    member this.RequestHeaders =
        HeaderRewrite.forwardedHeaders this.ForwardedFor this.ClientAddress this.IsHttps this.PublicHost this.Prefix

    /// Where the response goes back to, for the Location / Set-Cookie rewrites.
    member this.Response : ResponseContext =
        { Prefix = this.Prefix
          PublicScheme = (if this.IsHttps then "https" else "http")
          PublicHost = this.PublicHost
          ServerAuthorities = this.ServerAuthorities }

type RejectReason =
    | BadRequest of string
    | NotFound of string
    /// A rule's `deny`: its status and why.
    | Denied of status: int * reason: string

    member this.Status =
        match this with
        | BadRequest _ -> 400
        | NotFound _ -> 404
        | Denied(status, _) -> status

    member this.Text =
        match this with
        | BadRequest s
        | NotFound s
        | Denied(_, s) -> s

/// The decision for one request: the shell carries it out and decides nothing itself.
type Decision =
    | Redirect of status: int * location: string * why: string
    | Forward of ForwardPlan
    | Reject of RejectReason

/// The compiled, immutable form of a config that requests are decided against (STYLE rule 11).
type Snapshot(config: LbConfig) =
    let appIndex =
        let d = Dictionary<string, int>(StringComparer.Ordinal)
        config.Apps |> Array.iteri (fun i a -> d[a.Name] <- i)
        d
    let authorities =
        config.Apps |> Array.map (fun a -> a.Servers |> Array.map (fun s -> (string s.Address).ToLowerInvariant()))
    let prefixes = config.Apps |> Array.map (fun a -> a.Prefix)
    let appNames = config.Apps |> Array.map (fun a -> a.Name)
    let rec readsHeaders (condition: Condition) =
        match condition with
        | Condition.Header _
        | Condition.Cookie _ -> true
        | Condition.All cs
        | Condition.Any cs -> List.exists readsHeaders cs
        | Condition.Not c -> readsHeaders c
        | _ -> false
    let rulesReadHeaders =
        Seq.append config.Rules (config.Apps |> Seq.collect (fun a -> a.Rules)) |> Seq.exists (fun r -> readsHeaders r.When)

    member _.Config = config
    member _.TryFindApp(name: string) =
        match appIndex.TryGetValue name with
        | true, i -> Some i
        | _ -> None
    /// The app whose name is `text[start .. start + length - 1]`, or -1: routing looks up the first path
    /// segment in place, without cutting it out of the path.
    member _.FindApp(text: string, start: int, length: int) =
        let mutable found = -1
        let mutable i = 0
        while found < 0 && i < appNames.Length do
            let name = appNames[i]
            if name.Length = length && String.CompareOrdinal(name, 0, text, start, length) = 0 then found <- i
            i <- i + 1
        found
    member _.ServerAuthorities(appIndex: int) = authorities[appIndex]
    /// `AppConfig.Prefix` of app `appIndex`, built once.
    member _.Prefix(appIndex: int) = prefixes[appIndex]
    /// Whether some rule reads request headers or cookies: the shell passes `RequestFacts.Headers` only then.
    member _.RulesReadHeaders = rulesReadHeaders

[<RequireQualifiedAccess>]
module Routing =
    /// Splits a request target into path and query (`?` included in the query).
    let splitTarget (target: string) =
        match target.IndexOf '?' with
        | -1 -> target, ""
        | i -> target.Substring(0, i), target.Substring i

    /// RFC 9112 §3.2.2: a server MUST accept the absolute-form (`GET http://site/app1/x HTTP/1.1`); it is
    /// routed by its path and query, exactly like the origin-form `/app1/x`. Other forms are left to be refused.
    let originForm (target: string) =
        let schemeEnd = target.IndexOf "://"
        let scheme = if schemeEnd > 0 then target.Substring(0, schemeEnd).ToLowerInvariant() else ""
        if scheme = "http" || scheme = "https" then
            let rest = target.Substring(schemeEnd + 3)
            match rest.IndexOfAny [| '/'; '?' |] with
            | -1 -> "/"
            | i when rest[i] = '?' -> "/" + rest.Substring i
            | i -> rest.Substring i
        else
            target

    /// A Host header is `host[:port]` with a reg-name or IP literal (RFC 9110 §7.2); anything else is refused
    /// before it can end up in a Location header.
    let isValidHost (host: string) =
        if String.IsNullOrEmpty host || host.Length > 255 then false
        else
            // A loop, not Seq.forall: this runs on every request and must not allocate.
            let mutable ok = true
            let mutable i = 0
            while ok && i < host.Length do
                let c = host[i]
                ok <- Char.IsAsciiLetterOrDigit c || "-._~:[]!$&'()*+,;=%".IndexOf c >= 0
                i <- i + 1
            ok

    /// Apache's port-80 vhost: `https://HOST[:port]/same/path?same=query`, path and query exactly as received.
    let httpsRedirect (config: LbConfig) (request: RequestFacts) =
        let port =
            match config.Listen.Https with
            | Some e when e.Port <> 443 -> $":{e.Port}"
            | _ -> ""
        Redirect(config.Listen.RedirectStatus, "https://" + RequestRules.hostWithoutPort request.Host + port + request.RawTarget, "plain HTTP is redirected to https")

    /// The plan for app `index`: `publicTarget` is the normalised path (`pathLength` chars) and the query;
    /// the backend's target starts at `backendStart`; `prefix` is the public prefix the backend's paths live
    /// under (`/app1`, or "" for a request a rule routed there whatever its path).
    let private planFor (snapshot: Snapshot) (request: RequestFacts) index (prefix: string) (publicTarget: string) pathLength backendStart =
        { App = snapshot.Config.Apps[index]
          AppIndex = index
          PublicTarget = publicTarget
          PathLength = pathLength
          BackendStart = backendStart
          Prefix = prefix
          IsHttps = request.IsHttps
          PublicHost = request.Host
          ClientAddress = request.ClientAddress
          ForwardedFor = request.ForwardedFor
          ServerAuthorities = snapshot.ServerAuthorities index
          Rule = None
          Pin = Array.Empty()
          RequestEdits = Array.Empty()
          ResponseEdits = Array.Empty() }

    /// `publicTarget` is `path + query`, passed in so that a target that needed no change is not rebuilt.
    let private routeTarget (snapshot: Snapshot) (request: RequestFacts) (path: string) (query: string) (publicTarget: string) =
        // The first segment of `/seg/rest` or `/seg`, looked up where it is (no substring per request).
        let slash = path.IndexOf('/', 1)
        let segmentLength = (if slash < 0 then path.Length else slash) - 1
        match snapshot.FindApp(path, 1, segmentLength) with
        | -1 -> Reject(NotFound $"no app serves '/{path.Substring(1, segmentLength)}'")
        | _ when slash < 0 ->
            Redirect(snapshot.Config.Listen.RedirectStatus, path + "/" + query, "an app is reached with a trailing slash")
        | index -> Forward(planFor snapshot request index (snapshot.Prefix index) publicTarget path.Length slash)

    /// Routes on the first segment of the normalised path: `/app1/rest` → app1 with `/rest`; `/app1` → redirect
    /// to `/app1/`; anything else → 404. `/app10/` and `/app1x` are not app1: whole segments only.
    let routeByPath (snapshot: Snapshot) (request: RequestFacts) (path: string) (query: string) =
        routeTarget snapshot request path query (path + query)

    /// What rules read from a request whose path normalised to `path`.
    let ruleRequest (request: RequestFacts) (path: string) (query: string) : RuleRequest =
        { Method = request.Method
          Host = request.Host
          Path = path
          PublicPath = path
          Query = query
          Headers = request.Headers
          Client = RequestRules.clientAddress request.ClientAddress }

    /// What a matched rule does to the request: `plan` is where routing by path sends it (None when it does not
    /// reach an app), used unless the rule routes elsewhere.
    let private carryOut (snapshot: Snapshot) (request: RequestFacts) (facts: RuleRequest) (rule: Rule) (routed: Decision) =
        match rule.Then with
        | RuleAction.Deny status -> Reject(Denied(status, $"denied by {rule.Name}"))
        | RuleAction.Redirect(status, location) ->
            Redirect(status, RequestRules.expandLocation (location, facts), $"redirected by {rule.Name}")
        | RuleAction.Forward f ->
            let target =
                match f.Route |> Option.bind snapshot.TryFindApp with
                | Some index ->
                    Forward(planFor snapshot request index "" (facts.PublicPath + facts.Query) facts.PublicPath.Length 0)
                | None -> routed
            match target with
            | Forward plan ->
                let pin =
                    f.Pin
                    |> List.choose (fun name -> plan.App.Servers |> Array.tryFindIndex (fun s -> s.Name = name))
                    |> Array.ofList
                Forward
                    { plan with
                        Rule = Some rule.Name
                        Pin = pin
                        RequestEdits = Array.ofList f.RequestHeaders
                        ResponseEdits = Array.ofList f.ResponseHeaders }
            | other -> other

    /// The rules read for a request, in order: the global rules, then (if none matched and the path reaches an
    /// app) that app's rules on the path within the app. Each with whether it matched and why. `decide` reads the
    /// same rules in the same order without the explanations.
    let private readRules (snapshot: Snapshot) (request: RequestFacts) (path: string) (query: string) =
        let facts = ruleRequest request path query
        let globals = RequestRules.trace snapshot.Config.Rules facts
        match List.tryLast globals, routeByPath snapshot request path query with
        | Some(_, true, _), _ -> globals
        | _, Forward plan when plan.App.Rules.Length > 0 ->
            let rest, _ = splitTarget plan.BackendTarget
            globals @ RequestRules.trace plan.App.Rules { facts with Path = rest }
        | _ -> globals

    /// The whole decision for one request, made before any byte is forwarded. Rules (`RequestRules`) are read
    /// after the https redirect, on a request that would be proxied: the first that matches decides.
    [<CompiledName("Decide")>]
    let decide (snapshot: Snapshot) (request: RequestFacts) : Decision =
        let request = if request.RawTarget.StartsWith '/' then request else { request with RawTarget = originForm request.RawTarget }
        let target = request.RawTarget
        let queryStart = target.IndexOf '?'
        let rawPath = if queryStart < 0 then target else target.Substring(0, queryStart)
        let query = if queryStart < 0 then "" else target.Substring queryStart
        if not (isValidHost request.Host) then
            Reject(BadRequest "missing or invalid Host header")
        elif not (Paths.isSafeQuery query) then
            Reject(BadRequest "control character in query")
        else
            match Paths.normalizeIn (snapshot.Config.Defaults.EncodedSlashes, rawPath) with
            | Error(PathRefusal.Malformed reason) -> Reject(BadRequest reason)
            | Error(PathRefusal.EncodedSlash reason) -> Reject(NotFound reason)
            | Ok _ when not request.IsHttps && snapshot.Config.Listen.PlainHttp = PlainHttpMode.RedirectToHttps ->
                httpsRedirect snapshot.Config request
            | Ok path ->
                // A path that needed no change is the one received: the target is forwarded as it came.
                let publicTarget = if Object.ReferenceEquals(path, rawPath) then target else path + query
                let routed = routeTarget snapshot request path query publicTarget
                let appRules =
                    match routed with
                    | Forward plan -> plan.App.Rules
                    | _ -> Array.Empty()
                // No rule to read (the common case): nothing more to do per request.
                if snapshot.Config.Rules.Length = 0 && appRules.Length = 0 then
                    routed
                else
                    let facts = ruleRequest request path query
                    match RequestRules.firstMatch snapshot.Config.Rules facts, routed with
                    | Some rule, _ -> carryOut snapshot request facts rule routed
                    | None, Forward plan when appRules.Length > 0 ->
                        let appFacts = { facts with Path = fst (splitTarget plan.BackendTarget) }
                        match RequestRules.firstMatch appRules appFacts with
                        | Some rule -> carryOut snapshot request appFacts rule routed
                        | None -> routed
                    | None, _ -> routed

    /// The rules `decide` reads for a request, each with whether it matched and why (`lb explain`); empty when
    /// the request is refused or redirected before rules are read.
    let ruleTrace (snapshot: Snapshot) (request: RequestFacts) : (Rule * bool * string) list =
        let request = if request.RawTarget.StartsWith '/' then request else { request with RawTarget = originForm request.RawTarget }
        let rawPath, query = splitTarget request.RawTarget
        match Paths.normalizeIn (snapshot.Config.Defaults.EncodedSlashes, rawPath) with
        | Ok path when isValidHost request.Host && Paths.isSafeQuery query
                       && (request.IsHttps || snapshot.Config.Listen.PlainHttp = PlainHttpMode.Proxy) ->
            readRules snapshot request path query
        | _ -> []
