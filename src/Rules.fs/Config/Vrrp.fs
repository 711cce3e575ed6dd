namespace Lb.Rules

open System
open ConfigReading

/// `[vrrp]`: keepalived's vrrp_instance.
[<RequireQualifiedAccess>]
module VrrpSection =
    let private vrrpKeys =
        [ "interface"; "virtual_router_id"; "priority"; "advert_int"; "version"; "virtual_ips"; "preempt"; "preempt_delay"
          "garp_master_delay"; "garp_master_repeat"; "garp_master_refresh"; "unicast_peers"; "track_interfaces"; "track_self"
          "track_script"; "auth_pass" ]

    let private stringArray errors (section: Section) key : (string * Position) list =
        match tryGet section key with
        | Some(_, _, TArray(items, _)) ->
            items
            |> List.choose (fun item ->
                match item with
                | TString(s, at) -> Some(s, at)
                | node ->
                    addError errors (keyword section key) (TomlNode.position node) $"expected a string, found {TomlNode.kindName node}" "write [\"a\", \"b\"]"
                    None)
        | Some(_, at, node) ->
            addError errors (keyword section key) at $"expected an array, found {TomlNode.kindName node}" "write [\"a\", \"b\"]"
            []
        | None -> []

    /// `virtual_ips`: IPv4 addresses with a prefix length, `192.0.2.100/24` (a bare address means /32).
    let isValidVirtualIp (text: string) =
        let address, prefix =
            match text.IndexOf '/' with
            | -1 -> text, "32"
            | i -> text.Substring(0, i), text.Substring(i + 1)
        let dotted = address.Split '.'
        dotted.Length = 4
        && dotted |> Array.forall (fun part -> part.Length > 0 && part.Length <= 3 && part |> Seq.forall Char.IsAsciiDigit && int part <= 255)
        && (match Int32.TryParse prefix with
            | true, p -> p >= 1 && p <= 32 && prefix |> Seq.forall Char.IsAsciiDigit
            | _ -> false)

    let parseVirtualIps errors (vrrp: Section) =
        let ips = stringArray errors vrrp "virtual_ips"
        for ip, at in ips do
            if not (isValidVirtualIp ip) then
                addError errors (keyword vrrp "virtual_ips") at $"'{ip}' is not an IPv4 address with prefix" "write it like \"192.0.2.100/24\""
        if ips.IsEmpty then
            addError errors (keyword vrrp "virtual_ips") vrrp.Table.At "no virtual IP" "add virtual_ips = [\"192.0.2.100/24\"]"
        ips |> List.map fst |> Array.ofList

    let parseUnicastPeers errors (vrrp: Section) =
        let peers = stringArray errors vrrp "unicast_peers"
        for peer, at in peers do
            if not (isValidVirtualIp (peer + "/32")) then
                addError errors (keyword vrrp "unicast_peers") at $"'{peer}' is not an IPv4 address" "write it like \"192.0.2.12\""
        peers |> List.map fst |> Array.ofList

    /// `advert_int`: VRRPv2 counts whole seconds 1..255 (RFC 3768 §5.3.7); VRRPv3 centiseconds up to 40.95 s (RFC 5798 §5.2.7).
    let parseAdvertInterval errors (vrrp: Section) version =
        let interval = duration errors vrrp "advert_int" (TimeSpan.FromSeconds 1.0)
        let at = tryGet vrrp "advert_int" |> Option.map (fun (_, p, _) -> p) |> Option.defaultValue vrrp.Table.At
        if version = 2 && (interval.TotalSeconds < 1.0 || interval.TotalSeconds > 255.0 || interval.Milliseconds <> 0) then
            addError errors (keyword vrrp "advert_int") at "VRRPv2 advertises in whole seconds, 1s to 255s" "use version = 3 for sub-second intervals"
        elif version = 3 && (interval.TotalMilliseconds < 10.0 || interval.TotalMilliseconds > 40950.0 || int interval.TotalMilliseconds % 10 <> 0) then
            addError errors (keyword vrrp "advert_int") at "VRRPv3 advertises in steps of 10ms, 10ms to 40.95s" "like \"100ms\" or \"1s\""
        interval

    /// `[[vrrp.track_script]]`: `command`, `interval` (2s), `weight` (0), `rise` (1), `fall` (1).
    let parseTrackScripts errors (vrrp: Section) : TrackScriptConfig array =
        match tryGet vrrp "track_script" with
        | Some(_, _, TArray(items, _)) ->
            [| for i, item in List.indexed items do
                   match item with
                   | TTable t ->
                       let script = { Path = $"{vrrp.Path}.track_script[{i}]"; Table = t }
                       rejectUnknownKeys errors script [ "command"; "interval"; "weight"; "rise"; "fall" ]
                       match optString errors script "command" with
                       | Some(command, _) when command.Trim() <> "" ->
                           yield
                               { Command = command
                                 Interval = duration errors script "interval" (TimeSpan.FromSeconds 2.0)
                                 Weight = intInRange errors script "weight" -254 254 0
                                 Rise = intInRange errors script "rise" 1 1000 1
                                 Fall = intInRange errors script "fall" 1 1000 1 }
                       | _ -> addError errors (keyword script "command") script.Table.At "missing" "the command to run, exit 0 = success"
                   | node -> addError errors $"{vrrp.Path}.track_script[{i}]" (TomlNode.position node) "expected a table" "write [[vrrp.track_script]]" |]
        | Some(_, at, _) ->
            addError errors (keyword vrrp "track_script") at "expected an array of tables" "write [[vrrp.track_script]] sections"
            [||]
        | None -> [||]

    /// `track_self = { weight = 2 }`: lb checks its own listeners (the seed's `killall -0 apache2`, weight 2).
    let parseTrackSelf errors (vrrp: Section) : int option =
        match tryGet vrrp "track_self" with
        | Some(_, _, TTable t) ->
            let section = { Path = keyword vrrp "track_self"; Table = t }
            rejectUnknownKeys errors section [ "weight"; "enabled" ]
            if optBool errors section "enabled" = Some false then None else Some(intInRange errors section "weight" -254 254 2)
        | Some(_, _, TBoolean(false, _)) -> None
        | Some(_, _, TBoolean(true, _)) -> Some 2
        | Some(_, at, node) ->
            addError errors (keyword vrrp "track_self") at $"expected a table, found {TomlNode.kindName node}" "write track_self = { weight = 2 }"
            Some 2
        | None -> Some 2

    /// `[vrrp]`: every keyword of keepalived's vrrp_instance that lb supports.
    let parse (root: Section) : VrrpConfig option * ConfigError list =
        ownErrors <| fun errors ->
        match optTable errors root "vrrp" with
        | None -> None
        | Some vrrp ->
            rejectUnknownKeys errors vrrp vrrpKeys
            let iface =
                match optString errors vrrp "interface" with
                | Some(name, _) when name.Trim() <> "" -> name
                | _ ->
                    addError errors (keyword vrrp "interface") vrrp.Table.At "missing" "the interface that carries the VIP, like \"eth0\""
                    ""
            let version = intInRange errors vrrp "version" 2 3 3
            let password = optString errors vrrp "auth_pass"
            match password with
            | Some(p, at) when version <> 2 || p.Length > 8 || p = "" ->
                addError errors (keyword vrrp "auth_pass") at "auth_pass is VRRPv2's simple password: 1 to 8 characters, version = 2" "RFC 5798 removed authentication; prefer version = 3 without it"
            | _ -> ()
            if (tryGet vrrp "virtual_router_id").IsNone then
                addError errors (keyword vrrp "virtual_router_id") vrrp.Table.At "missing" "1 to 255, the same on both nodes, unique on the LAN"
            Some
                { Interface = iface
                  VirtualRouterId = intInRange errors vrrp "virtual_router_id" 1 255 51
                  Priority = intInRange errors vrrp "priority" 1 255 100
                  AdvertInterval = parseAdvertInterval errors vrrp version
                  Version = version
                  VirtualIps = parseVirtualIps errors vrrp
                  Preempt = optBool errors vrrp "preempt" |> Option.defaultValue true
                  // "0s" turns each of these off, as in keepalived (and the docs): it is a value, not a mistake.
                  PreemptDelay = durationOrOff errors vrrp "preempt_delay" TimeSpan.Zero
                  GarpMasterDelay = durationOrOff errors vrrp "garp_master_delay" (TimeSpan.FromSeconds 5.0)
                  GarpMasterRepeat = intInRange errors vrrp "garp_master_repeat" 1 100 5
                  GarpMasterRefresh = durationOrOff errors vrrp "garp_master_refresh" TimeSpan.Zero
                  UnicastPeers = parseUnicastPeers errors vrrp
                  TrackInterfaces = stringArray errors vrrp "track_interfaces" |> List.map fst |> Array.ofList
                  TrackSelfWeight = parseTrackSelf errors vrrp
                  TrackScripts = parseTrackScripts errors vrrp
                  AuthPassword = password |> Option.map fst }
