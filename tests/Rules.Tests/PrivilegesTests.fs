module Lb.Rules.Tests.PrivilegesTests

open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules

let private forAll (g: Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

let private needs config start =
    Privileges.required config start |> List.map (fun n -> n.Capability) |> set

let private ports (c: LbConfig) =
    [ c.Listen.Http; c.Listen.Https; c.Stats |> Option.map (fun s -> s.Listen) ] |> List.choose id |> List.map (fun e -> e.Port)

let private status mask = $"Name:\tlb\nUid:\t999\t999\t999\t999\nCapInh:\t0000000000000000\nCapEff:\t%016x{mask}\nCapBnd:\t000001ffffffffff\n"

[<Property(MaxTest = 300)>]
let ``A process with the three capabilities of the systemd unit lacks nothing, whatever the config`` () =
    let all = Privileges.all |> Array.fold (fun m c -> m ||| (1UL <<< Privileges.bit c)) 0UL
    forAll (Gen.zip Generators.lbConfig Generators.unprivilegedPortStart) (fun (config, start) ->
        Privileges.missing (Privileges.required config start) all = []
        && Privileges.problems (config, start, status all) = [||])

[<Property(MaxTest = 300)>]
let ``CAP_NET_BIND_SERVICE is needed exactly when a listener's port is below the unprivileged start`` () =
    forAll (Gen.zip Generators.lbConfig Generators.unprivilegedPortStart) (fun (config, start) ->
        needs config start |> Set.contains Capability.NetBindService = (ports config |> List.exists (fun p -> p < start)))

[<Property(MaxTest = 300)>]
let ``VRRP needs CAP_NET_RAW and CAP_NET_ADMIN, and nothing else needs them`` () =
    forAll (Gen.zip Generators.lbConfig Generators.unprivilegedPortStart) (fun (config, start) ->
        let raw = needs config start - set [ Capability.NetBindService ]
        raw = (if config.Vrrp.IsSome then set [ Capability.NetRaw; Capability.NetAdmin ] else Set.empty))

[<Property(MaxTest = 300)>]
let ``Every capability the config needs and the mask lacks gets its own line naming it, and only those`` () =
    forAll (Gen.zip3 Generators.lbConfig Generators.unprivilegedPortStart Generators.capabilityMask) (fun (config, start, mask) ->
        let lacking = Privileges.required config start |> List.filter (fun n -> not (Privileges.has mask n.Capability))
        let lines = Privileges.problems (config, start, status mask)
        let named = lines |> Array.filter (fun l -> l.Contains "missing capability")
        named.Length = lacking.Length
        && List.forall2 (fun (n: CapabilityNeed) (l: string) -> l.Contains(Privileges.name n.Capability) && l.Contains n.Keyword) lacking (List.ofArray named)
        && (lines.Length = 0) = lacking.IsEmpty)

[<Fact>]
let ``Without CapEff in the status text lb leaves the refusal to the kernel`` () =
    let config = { Generators.routingConfig with Listen = { Generators.routingConfig.Listen with Https = Some { Host = "*"; Port = 443 } } }
    Assert.Empty(Privileges.problems (config, 1024, "Name:\tlb\n"))
    Assert.Empty(Privileges.problems (config, 1024, "CapEff:\tnot-hex\n"))

[<Fact>]
let ``An https listener on 443 with no capabilities names CAP_NET_BIND_SERVICE and the keyword`` () =
    let config = { Generators.routingConfig with Listen = { Generators.routingConfig.Listen with Https = Some { Host = "*"; Port = 443 } } }
    let lines = Privileges.problems (config, 1024, status 0UL)
    Assert.Equal(
        "lb: cannot start: missing capability CAP_NET_BIND_SERVICE: listen.https binds port 443, below net.ipv4.ip_unprivileged_port_start (1024)",
        lines[0])
    Assert.Equal(2, lines.Length)
    Assert.Contains("AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_NET_ADMIN", lines[1])

[<Fact>]
let ``The CapEff line of this process's own proc status parses`` () =
    let text = System.IO.File.ReadAllText "/proc/self/status"
    Assert.True((Privileges.effectiveMask text).IsSome, text)
    Assert.Equal(Some 0x3400UL, Privileges.effectiveMask "CapPrm:\t0\nCapEff:\t0000000000003400\n")
