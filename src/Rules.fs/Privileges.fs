namespace Lb.Rules

open System
open System.Globalization

/// The Linux capabilities lb can need (capabilities(7)). lb never needs root itself: the seed runs HAProxy as
/// user `haproxy` after it binds; lb runs as its own user from the start, given only these three.
[<RequireQualifiedAccess>]
type Capability =
    /// Binding a TCP port below `net.ipv4.ip_unprivileged_port_start` (80, 443).
    | NetBindService
    /// Adding and removing the VIP with `ip addr add|del` (a child process inherits it as an ambient capability).
    | NetAdmin
    /// The raw IP socket for VRRP (protocol 112) and the AF_PACKET socket for gratuitous ARP.
    | NetRaw

/// One capability a config needs, and the keyword that needs it.
type CapabilityNeed =
    { Capability: Capability
      Keyword: string
      Reason: string }

/// Which capabilities a config needs and which of them a process lacks, decided from the config and the facts the
/// shell reads (`CapEff:` of /proc/self/status, `net.ipv4.ip_unprivileged_port_start`), so lb refuses to start
/// with one line per missing capability instead of failing half-way with EACCES/EPERM and a stack trace.
[<RequireQualifiedAccess>]
module Privileges =

    /// capabilities(7) / linux/capability.h: the bit of each capability in the CapEff mask.
    let bit capability =
        match capability with
        | Capability.NetBindService -> 10
        | Capability.NetAdmin -> 12
        | Capability.NetRaw -> 13

    /// The name systemd (`AmbientCapabilities=`) and capabilities(7) use.
    [<CompiledName("Name")>]
    let name capability =
        match capability with
        | Capability.NetBindService -> "CAP_NET_BIND_SERVICE"
        | Capability.NetAdmin -> "CAP_NET_ADMIN"
        | Capability.NetRaw -> "CAP_NET_RAW"

    /// Every capability lb may need: the set samples/systemd/lb.service grants, and no other.
    [<CompiledName("All")>]
    let all = [| Capability.NetBindService; Capability.NetRaw; Capability.NetAdmin |]

    /// The kernel's default `net.ipv4.ip_unprivileged_port_start`.
    [<Literal>]
    let DefaultUnprivilegedPortStart = 1024

    let private listeners (config: LbConfig) =
        [ config.Listen.Http |> Option.map (fun e -> "listen.http", e)
          config.Listen.Https |> Option.map (fun e -> "listen.https", e)
          config.Stats |> Option.map (fun s -> "stats.listen", s.Listen) ]
        |> List.choose id

    /// What `config` needs: CAP_NET_BIND_SERVICE for each listener on a port below `unprivilegedPortStart`,
    /// CAP_NET_RAW and CAP_NET_ADMIN when it has a `[vrrp]` section. Port 0 (any free port) needs nothing.
    let required (config: LbConfig) (unprivilegedPortStart: int) : CapabilityNeed list =
        let ports =
            listeners config
            |> List.filter (fun (_, e) -> e.Port > 0 && e.Port < unprivilegedPortStart)
            |> List.map (fun (keyword, e) ->
                { Capability = Capability.NetBindService
                  Keyword = keyword
                  Reason = $"binds port {e.Port}, below net.ipv4.ip_unprivileged_port_start ({unprivilegedPortStart})" })
        let vrrp =
            match config.Vrrp with
            | None -> []
            | Some _ ->
                [ { Capability = Capability.NetRaw
                    Keyword = "vrrp"
                    Reason = "opens a raw IP socket for protocol 112 and an AF_PACKET socket for gratuitous ARP" }
                  { Capability = Capability.NetAdmin
                    Keyword = "vrrp.virtual_ips"
                    Reason = "adds and removes the VIP with `ip addr add|del`" } ]
        ports @ vrrp

    /// The effective capability mask from the text of /proc/PID/status (`CapEff:\t0000000000003400`, hex).
    /// None when the line is absent or not hexadecimal.
    let effectiveMask (procStatus: string) : uint64 option =
        procStatus.Split('\n')
        |> Array.tryFind (fun line -> line.StartsWith("CapEff:", StringComparison.Ordinal))
        |> Option.bind (fun line ->
            match UInt64.TryParse(line.Substring(7).Trim(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture) with
            | true, mask -> Some mask
            | _ -> None)

    let has (mask: uint64) capability = mask &&& (1UL <<< bit capability) <> 0UL

    /// The needs of `required` that `mask` does not grant, in the order `required` lists them.
    let missing (needs: CapabilityNeed list) (mask: uint64) = needs |> List.filter (fun n -> not (has mask n.Capability))

    /// The lines `lb run` prints before exiting 1: one per missing capability, naming it and the keyword, then how
    /// to grant them. Empty when nothing is missing, or when `procStatus` has no readable CapEff line (then the
    /// kernel's refusal is the error).
    [<CompiledName("Problems")>]
    let problems (config: LbConfig, unprivilegedPortStart: int, procStatus: string) : string array =
        match effectiveMask procStatus with
        | None -> [||]
        | Some mask ->
            match missing (required config unprivilegedPortStart) mask with
            | [] -> [||]
            | lacking ->
                let names = all |> Array.map name |> String.concat " "
                let hint =
                    $"lb: hint: run lb as its own user with AmbientCapabilities={names} (samples/systemd/lb.service), "
                    + "or: setpriv --inh-caps=+net_bind_service,+net_raw,+net_admin --ambient-caps=+net_bind_service,+net_raw,+net_admin -- lb run -c FILE"
                [| for n in lacking do
                       $"lb: cannot start: missing capability {name n.Capability}: {n.Keyword} {n.Reason}"
                   hint |]
