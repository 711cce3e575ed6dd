module Lb.Rules.Tests.ReloadTests

open System
open Xunit
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules
open Lb.Rules.Tests.Generators

let private forAll (g: FsCheck.Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

let private carried (origin: ServerOrigin) =
    match origin with
    | ServerOrigin.Carried i -> Some i
    | ServerOrigin.Fresh -> None

[<Property(MaxTest = 200)>]
let ``reloading the same config carries every server over, refuses nothing and changes no app`` () =
    forAll lbConfig (fun config ->
        let plan = Reload.plan (config, config)
        plan.CanApply
        && plan.Added.Length = 0 && plan.Removed.Length = 0 && plan.Changed.Length = 0
        && plan.Apps |> Array.mapi (fun a app -> app.OldIndex = Some a && app.Servers |> Array.mapi (fun i o -> carried o = Some i) |> Array.forall id) |> Array.forall id)

[<Property(MaxTest = 300)>]
let ``the plan is total: every app and server of the new config gets an origin inside the old config`` () =
    forAll reloadPair (fun (old, next) ->
        let plan = Reload.plan (old, next)
        plan.Apps.Length = next.Apps.Length
        && Array.forall2
            (fun (app: AppConfig) (p: AppReload) ->
                p.Name = app.Name
                && p.Servers.Length = app.Servers.Length
                && match p.OldIndex with
                   | Some o -> old.Apps[o].Name = app.Name && p.Servers |> Array.forall (fun s -> carried s |> Option.forall (fun i -> i >= 0 && i < old.Apps[o].Servers.Length))
                   | None -> p.Servers |> Array.forall (fun s -> s = ServerOrigin.Fresh))
            next.Apps plan.Apps)

[<Property(MaxTest = 300)>]
let ``a server inherits state only from the same app, name and address, never from another server`` () =
    forAll reloadPair (fun (old, next) ->
        let plan = Reload.plan (old, next)
        Array.forall2
            (fun (app: AppConfig) (p: AppReload) ->
                Array.forall2
                    (fun (server: ServerConfig) origin ->
                        match carried origin, p.OldIndex with
                        | Some i, Some o ->
                            let before = old.Apps[o].Servers[i]
                            before.Name = server.Name && before.Address = server.Address
                        | Some _, None -> false
                        // Fresh only when the old app has no server with that name and address.
                        | None, Some o -> old.Apps[o].Servers |> Array.forall (fun s -> s.Name <> server.Name || s.Address <> server.Address)
                        | None, None -> true)
                    app.Servers p.Servers)
            next.Apps plan.Apps)

[<Property(MaxTest = 300)>]
let ``added, removed and changed apps partition the difference between the configs`` () =
    forAll reloadPair (fun (old, next) ->
        let plan = Reload.plan (old, next)
        let names (c: LbConfig) = c.Apps |> Array.map (fun a -> a.Name) |> Set.ofArray
        Set.ofArray plan.Added = Set.difference (names next) (names old)
        && Set.ofArray plan.Removed = Set.difference (names old) (names next)
        && plan.Changed |> Array.forall (fun n -> Set.contains n (names old) && Set.contains n (names next))
        && plan.Changed |> Array.forall (fun n -> Array.find (fun (a: AppConfig) -> a.Name = n) old.Apps <> Array.find (fun (a: AppConfig) -> a.Name = n) next.Apps))

[<Property(MaxTest = 200)>]
let ``editing only apps and rules never needs a restart`` () =
    forAll (Gen.zip reloadPair lbConfig) (fun ((old, next), rules) ->
        let appsOnly = { old with Apps = next.Apps |> Array.map (fun a -> { a with Cache = false }); Rules = rules.Rules }
        let old = { old with Apps = old.Apps |> Array.map (fun a -> { a with Cache = false }) }
        (Reload.plan (old, appsOnly)).CanApply)

[<Fact>]
let ``a listener, VRRP or stats change refuses the reload and names the section`` () =
    let old = routingConfig
    let moved = { old with Listen = { old.Listen with Http = Some { Host = "127.0.0.1"; Port = 8081 } } }
    let refusal = Assert.Single((Reload.plan (old, moved)).Refused)
    Assert.StartsWith("[listen] http changed", refusal)
    let renamed = { old with Node = { old.Node with Name = "other" } }
    Assert.StartsWith("[node] name changed", Assert.Single((Reload.plan (old, renamed)).Refused))
    let watched = { old with Node = { old.Node with ReloadOnChange = true } }
    Assert.Empty((Reload.plan (old, watched)).Refused)
    let tlsMoved = { old with Tls = Some { Cert = "/other.pem"; Key = "/other.key"; Chain = None } }
    Assert.Empty((Reload.plan (old, tlsMoved)).Refused)

[<Fact>]
let ``the summary names added, removed and changed apps`` () =
    let old = routingConfig
    let next = { old with Apps = old.Apps |> Array.skip 1 |> Array.append [| { old.Apps[0] with Name = "new" } |] }
    let next = { next with Apps = next.Apps |> Array.mapi (fun i a -> if i = 1 then { a with Balance = BalanceAlgorithm.LeastConn } else a) }
    Assert.Equal($"apps added: new; removed: {old.Apps[0].Name}; changed: {old.Apps[1].Name}", Reload.summary (Reload.plan (old, next)))
    Assert.Equal("no app changed", Reload.summary (Reload.plan (old, old)))

[<Property(MaxTest = 300)>]
let ``new thresholds keep a server up or down, and the same thresholds change nothing`` () =
    forAll (Gen.zip reachedState thresholds) (fun (state, t) ->
        let moved = Health.rethreshold (state, t)
        moved.IsUp = state.IsUp
        && moved.Thresholds = t
        && moved.Health >= 0 && moved.Health <= t.Rise + t.Fall - 1
        && Health.rethreshold (state, state.Thresholds) = state)

[<Property(MaxTest = 100)>]
let ``a carried server of an app that stopped checking health is up`` () =
    forAll reachedState (fun state ->
        let health = { Config.defaultHealth with Enabled = false }
        (Reload.carriedHealth (state, health)).IsUp)

[<Fact>]
let ``reload_on_change is off unless the node section turns it on, and only takes a boolean`` () =
    let parse node =
        Config.parseText $"{node}\n[listen]\nhttp = \"127.0.0.1:18080\"\nplain_http = \"proxy\"\n[apps.a]\nservers = [{{ name = \"s1\", address = \"127.0.0.1:9001\" }}]\n" "/etc/lb" (fun _ -> true)
    let reloadOnChange node =
        match parse node with
        | Ok c -> c.Node.ReloadOnChange
        | Error e -> failwithf "%A" e
    Assert.False(reloadOnChange "")
    Assert.False(reloadOnChange "[node]\nname = \"lb1\"")
    Assert.True(reloadOnChange "[node]\nreload_on_change = true")
    match parse "[node]\nreload_on_change = \"yes\"" with
    | Error [ e ] -> Assert.Equal("node.reload_on_change", e.Keyword)
    | other -> failwithf "expected one error at node.reload_on_change, got %A" other

[<Fact>]
let ``a timeout_shutdown change refuses the reload, a retry_on_timeout change applies`` () =
    let old = routingConfig
    let drain = { old with Defaults = { old.Defaults with TimeoutShutdown = TimeSpan.FromSeconds 5.0 } }
    Assert.StartsWith("[defaults] timeout_shutdown changed", Assert.Single((Reload.plan (old, drain)).Refused))
    let retry = { old with Defaults = { old.Defaults with RetryOnTimeout = not old.Defaults.RetryOnTimeout } }
    Assert.True((Reload.plan (old, retry)).CanApply)

[<Fact>]
let ``an encoded_slashes change applies live, and the next request is decided in the new mode`` () =
    let old = routingConfig
    let decoding = { old with Defaults = { old.Defaults with EncodedSlashes = EncodedSlashes.Decode } }
    Assert.True((Reload.plan (old, decoding)).CanApply)
    let target = request true "/app1/..%2Fapp2/x"
    Assert.Equal(404, (match Routing.decide (Snapshot old) target with Reject r -> r.Status | _ -> 0))
    match Routing.decide (Snapshot decoding) target with
    | Forward plan -> Assert.Equal(("app2", "/x"), (plan.App.Name, plan.BackendTarget))
    | other -> failwithf "not forwarded: %A" other
