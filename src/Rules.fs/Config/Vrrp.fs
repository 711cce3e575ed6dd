namespace Lb.Rules

open System
open ConfigReading

/// `[vrrp]`: keepalived's vrrp_instance.
[<RequireQualifiedAccess>]
module VrrpSection =
    module K = Keywords.Vrrp
    module T = Keywords.TrackScript

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
        let ips = stringArray errors vrrp K.virtualIps.Name
        for ip, at in ips do
            if not (isValidVirtualIp ip) then
                addError errors (keyword vrrp K.virtualIps.Name) at $"'{ip}' is not an IPv4 address with prefix" "write it like \"192.0.2.100/24\""
        if ips.IsEmpty then
            addError errors (keyword vrrp K.virtualIps.Name) vrrp.Table.At "no virtual IP" "add virtual_ips = [\"192.0.2.100/24\"]"
        ips |> List.map fst |> Array.ofList

    let parseUnicastPeers errors (vrrp: Section) =
        let peers = stringArray errors vrrp K.unicastPeers.Name
        for peer, at in peers do
            if not (isValidVirtualIp (peer + "/32")) then
                addError errors (keyword vrrp K.unicastPeers.Name) at $"'{peer}' is not an IPv4 address" "write it like \"192.0.2.12\""
        peers |> List.map fst |> Array.ofList

    /// `advert_int`: VRRPv2 counts whole seconds 1..255 (RFC 3768 §5.3.7); VRRPv3 centiseconds up to 40.95 s (RFC 5798 §5.2.7).
    let parseAdvertInterval errors (vrrp: Section) version =
        let interval = duration errors vrrp K.advertInterval.Name K.advertInterval.Default
        let at = tryGet vrrp K.advertInterval.Name |> Option.map (fun (_, p, _) -> p) |> Option.defaultValue vrrp.Table.At
        if version = 2 && (interval.TotalSeconds < 1.0 || interval.TotalSeconds > 255.0 || interval.Milliseconds <> 0) then
            addError errors (keyword vrrp K.advertInterval.Name) at "VRRPv2 advertises in whole seconds, 1s to 255s" "use version = 3 for sub-second intervals"
        elif version = 3 && (interval.TotalMilliseconds < 10.0 || interval.TotalMilliseconds > 40950.0 || int interval.TotalMilliseconds % 10 <> 0) then
            addError errors (keyword vrrp K.advertInterval.Name) at "VRRPv3 advertises in steps of 10ms, 10ms to 40.95s" "like \"100ms\" or \"1s\""
        interval

    /// `[[vrrp.track_script]]`: `command`, `interval` (2s), `weight` (0), `rise` (1), `fall` (1).
    let parseTrackScripts errors (vrrp: Section) : TrackScriptConfig array =
        match tryGet vrrp K.trackScript.Name with
        | Some(_, _, TArray(items, _)) ->
            [| for i, item in List.indexed items do
                   match item with
                   | TTable t ->
                       let script = { Path = $"{vrrp.Path}.track_script[{i}]"; Table = t }
                       rejectUnknownKeys errors script T.names
                       match optString errors script T.command.Name with
                       | Some(command, _) when command.Trim() <> "" ->
                           yield
                               { Command = command
                                 Interval = duration errors script T.interval.Name T.interval.Default
                                 Weight = intInRange errors script T.weight.Name -254 254 T.weight.Default
                                 Rise = intInRange errors script T.rise.Name 1 1000 T.rise.Default
                                 Fall = intInRange errors script T.fall.Name 1 1000 T.fall.Default }
                       | _ -> addError errors (keyword script T.command.Name) script.Table.At "missing" "the command to run, exit 0 = success"
                   | node -> addError errors $"{vrrp.Path}.track_script[{i}]" (TomlNode.position node) "expected a table" "write [[vrrp.track_script]]" |]
        | Some(_, at, _) ->
            addError errors (keyword vrrp K.trackScript.Name) at "expected an array of tables" "write [[vrrp.track_script]] sections"
            [||]
        | None -> [||]

    /// `track_self = { weight = 2 }`: lb checks its own listeners (the seed's `killall -0 apache2`, weight 2).
    let parseTrackSelf errors (vrrp: Section) : int option =
        let defaultWeight = K.trackSelfWeight.Default
        match tryGet vrrp K.trackSelf.Name with
        | Some(_, _, TTable t) ->
            let section = { Path = keyword vrrp K.trackSelf.Name; Table = t }
            rejectUnknownKeys errors section [ K.trackSelfWeight.Name; "enabled" ]
            if optBool errors section "enabled" = Some false then None else Some(intInRange errors section K.trackSelfWeight.Name -254 254 defaultWeight)
        | Some(_, _, TBoolean(false, _)) -> None
        | Some(_, _, TBoolean(true, _)) -> Some defaultWeight
        | Some(_, at, node) ->
            addError errors (keyword vrrp K.trackSelf.Name) at $"expected a table, found {TomlNode.kindName node}" "write track_self = { weight = 2 }"
            K.trackSelf.Default
        | None -> K.trackSelf.Default

    /// `interface`: where adverts are sent and the VIPs added. Rejects a config without it.
    let parseInterface errors (vrrp: Section) : string =
        match optString errors vrrp K.iface.Name with
        | Some(name, _) when name.Trim() <> "" -> name
        | _ ->
            addError errors (keyword vrrp K.iface.Name) vrrp.Table.At "missing" "the interface that carries the VIP, like \"eth0\""
            ""

    /// `virtual_router_id`: 1..255 (RFC 5798 §5.2.3). Rejects a config without it: both nodes must agree on it.
    let parseVirtualRouterId errors (vrrp: Section) : int =
        if (tryGet vrrp K.virtualRouterId.Name).IsNone then
            addError errors (keyword vrrp K.virtualRouterId.Name) vrrp.Table.At "missing" "1 to 255, the same on both nodes, unique on the LAN"
        intInRange errors vrrp K.virtualRouterId.Name 1 255 51

    /// `priority`: 1..255 (RFC 5798 §5.2.4), default 100 as keepalived.
    let parsePriority errors (vrrp: Section) : int = intInRange errors vrrp K.priority.Name 1 255 K.priority.Default

    /// `version`: 2 (RFC 3768) or 3 (RFC 5798, the default).
    let parseVersion errors (vrrp: Section) : int = intInRange errors vrrp K.version.Name 2 3 K.version.Default

    /// `auth_pass`: VRRPv2's simple password (RFC 3768 §5.3.6). Rejects it with version 3 (RFC 5798 removed
    /// authentication), empty, or longer than 8 characters.
    let parseAuthPass errors (vrrp: Section) (version: int) : string option =
        match optString errors vrrp K.authPass.Name with
        | Some(p, at) when version <> 2 || p.Length > 8 || p = "" ->
            addError errors (keyword vrrp K.authPass.Name) at "auth_pass is VRRPv2's simple password: 1 to 8 characters, version = 2" "RFC 5798 removed authentication; prefer version = 3 without it"
            Some p
        | Some(p, _) -> Some p
        | None -> None

    /// `preempt`: a higher-priority backup takes over from a lower master (default true; false is `nopreempt`).
    let parsePreempt errors (vrrp: Section) : bool = optBool errors vrrp K.preempt.Name |> Option.defaultValue K.preempt.Default

    // "0s" turns each of the next three off, as in keepalived (and the docs): zero is a value, not a mistake.

    /// `preempt_delay`: how long a preempting backup waits before it takes over (default and "0s": none).
    let parsePreemptDelay errors (vrrp: Section) : TimeSpan = durationOrOff errors vrrp K.preemptDelay.Name K.preemptDelay.Default

    /// `garp_master_delay`: the second gratuitous-ARP burst after becoming master (default 5s; "0s": none).
    let parseGarpMasterDelay errors (vrrp: Section) : TimeSpan =
        durationOrOff errors vrrp K.garpMasterDelay.Name K.garpMasterDelay.Default

    /// `garp_master_refresh`: repeat a gratuitous-ARP burst this often while master (default and "0s": off).
    let parseGarpMasterRefresh errors (vrrp: Section) : TimeSpan =
        durationOrOff errors vrrp K.garpMasterRefresh.Name K.garpMasterRefresh.Default

    /// `garp_master_repeat`: gratuitous ARPs per VIP in each burst, 1..100 (default 5).
    let parseGarpMasterRepeat errors (vrrp: Section) : int =
        intInRange errors vrrp K.garpMasterRepeat.Name 1 100 K.garpMasterRepeat.Default

    /// `track_interfaces`: interface names; a link down on any of them puts the router in FAULT.
    let parseTrackInterfaces errors (vrrp: Section) : string array =
        stringArray errors vrrp K.trackInterfaces.Name |> List.map fst |> Array.ofList

    /// `[vrrp]`: every keyword of keepalived's vrrp_instance that lb supports.
    let parse (root: Section) : VrrpConfig option * ConfigError list =
        ownErrors <| fun errors ->
        match optTable errors root Keywords.Vrrp.Table with
        | None -> None
        | Some vrrp ->
            rejectUnknownKeys errors vrrp K.names
            let iface = parseInterface errors vrrp
            let version = parseVersion errors vrrp
            let password = parseAuthPass errors vrrp version
            let routerId = parseVirtualRouterId errors vrrp
            Some
                { Interface = iface
                  VirtualRouterId = routerId
                  Priority = parsePriority errors vrrp
                  AdvertInterval = parseAdvertInterval errors vrrp version
                  Version = version
                  VirtualIps = parseVirtualIps errors vrrp
                  Preempt = parsePreempt errors vrrp
                  PreemptDelay = parsePreemptDelay errors vrrp
                  GarpMasterDelay = parseGarpMasterDelay errors vrrp
                  GarpMasterRepeat = parseGarpMasterRepeat errors vrrp
                  GarpMasterRefresh = parseGarpMasterRefresh errors vrrp
                  UnicastPeers = parseUnicastPeers errors vrrp
                  TrackInterfaces = parseTrackInterfaces errors vrrp
                  TrackSelfWeight = parseTrackSelf errors vrrp
                  TrackScripts = parseTrackScripts errors vrrp
                  AuthPassword = password }
