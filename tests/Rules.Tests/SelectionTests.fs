module Lb.Rules.Tests.SelectionTests

open System
open System.Threading
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules
open Lb.Rules.Tests.Generators

let private now = DateTimeOffset(2026, 12, 8, 12, 0, 0, TimeSpan.Zero)

let private adminState: Gen<AdminState> =
    Gen.frequency
        [ 6, Gen.constant AdminState.Ready
          1, Gen.constant (Admin.drain)
          1, Gen.constant (Admin.drainUntil (now.AddMinutes 5.0))
          1, Gen.constant (Admin.drainUntil (now.AddMinutes -5.0))
          1, Gen.constant AdminState.Maint ]

let private serverView: Gen<ServerView> =
    gen {
        let! up = Gen.frequency [ 4, Gen.constant true; 1, Gen.constant false ]
        let! admin = adminState
        let! active = Gen.choose (0, 6)
        let! free = Gen.frequency [ 4, Gen.constant true; 1, Gen.constant false ]
        return { Up = up; Admin = admin; Active = active; HasFreeSlot = free }
    }

/// An app of a generated config, its servers' state now, a rule pin (often none), redispatch, balancer memory
/// and draws, and the Cookie header: none, one naming a server of the app, or a forged one.
let private scenario: Gen<SelectionInput * string array> =
    gen {
        let! config = lbConfig
        let! app = Gen.elements config.Apps
        let n = app.Servers.Length
        let! views = Gen.arrayOfLength n serverView
        let! pin =
            Gen.frequency
                [ 3, Gen.constant [||]
                  1, Gen.subListOf [ 0 .. n - 1 ] |> Gen.map Array.ofSeq |> Gen.filter (fun p -> p.Length > 0) ]
        let! redispatch = Gen.elements [ true; false ]
        let! turn = Gen.choose (0, 1000)
        let! draw1 = Gen.choose (Int32.MinValue, Int32.MaxValue)
        let! draw2 = Gen.choose (Int32.MinValue, Int32.MaxValue)
        let! warm = Gen.choose (0, 7)
        let! named = Gen.choose (0, n - 1)
        let! cookie =
            match app.Persistence.Cookie with
            | None -> Gen.constant [||]
            | Some name ->
                Gen.frequency
                    [ 1, Gen.constant [||]
                      3, Gen.constant [| $"a=b; {name}={app.Servers[named].CookieValue}" |]
                      1, Gen.constant [| $"{name}=forged" |] ]
        let input =
            { Selection.idle (app, pin, redispatch, now) with
                Servers = views
                Turn = turn
                Draw1 = draw1
                Draw2 = draw2 }
        // A balancer that has made a few choices already, so round robin is not always at its start.
        let roundRobin =
            Seq.fold (fun (state: RoundRobinState) _ -> (Selection.first ({ input with RoundRobin = state }, [||])).NextRoundRobin) input.RoundRobin [ 1..warm ]
        return { input with RoundRobin = roundRobin }, cookie
    }

let private takesNew (input: SelectionInput) i =
    let s = input.Servers[i]
    Admin.usableForNew (s.Up, s.Admin) && (input.Pin.Length = 0 || Array.contains i input.Pin) && input.App.Servers[i].Weight > 0

let private keepsPinned (input: SelectionInput) i =
    let s = input.Servers[i]
    Admin.usableForPinned (s.Up, s.Admin, input.Now)

let private inPin (input: SelectionInput) i = input.Pin.Length = 0 || Array.contains i input.Pin

let private named (input: SelectionInput, cookie: string array) =
    match Persistence.cookieOutcome (input.App, cookie) with
    | NamesServer i -> Some i
    | _ -> None

[<Fact>]
let ``a cookie naming a server that keeps pinned clients is always honoured, with no new cookie`` () =
    let law (input: SelectionInput, cookie) =
        match named (input, cookie) with
        | Some i when inPin input i && keepsPinned input i ->
            let step = Selection.first (input, cookie)
            step.Selection = Pinned i && not step.InsertCookie
        | _ -> true
    let hits =
        checkWithCoverage 3000 scenario law (fun (input, cookie) ->
            match named (input, cookie) with
            | Some i -> inPin input i && keepsPinned input i
            | None -> false)
    Assert.True(hits > 100L, $"only {hits} cases pinned")

[<Fact>]
let ``a cookie naming a down, MAINT or expired-drain server redispatches with a new cookie when redispatch is on, else 503`` () =
    let law (input: SelectionInput, cookie) =
        match named (input, cookie) with
        | Some i when inPin input i && not (keepsPinned input i) ->
            let step = Selection.first (input, cookie)
            match step.Selection with
            | PinnedDownRedispatch(p, s) -> input.Redispatch && p = i && s <> i && takesNew input s && step.InsertCookie = Persistence.isOn input.App
            | NoServer(NamesServer p) -> input.Redispatch && p = i && not (Array.init input.Servers.Length (takesNew input) |> Array.contains true)
            | PinnedDownRefused p -> not input.Redispatch && p = i && step.Selection.Server = -1
            | _ -> false
        | _ -> true
    let hits =
        checkWithCoverage 3000 scenario law (fun (input, cookie) ->
            match named (input, cookie) with
            | Some i -> inPin input i && not (keepsPinned input i)
            | None -> false)
    Assert.True(hits > 50L, $"only {hits} cases had a pin to an unusable server")

[<Fact>]
let ``a new client goes only to a server that takes new clients: never DRAIN, MAINT, down, weight 0 or outside the pin`` () =
    let law (input: SelectionInput, cookie) =
        let step = Selection.first (input, cookie)
        match step.Selection with
        | Balanced(s, _, _)
        | Queued(s, _)
        | PinnedDownRedispatch(_, s) -> takesNew input s && step.InsertCookie = Persistence.isOn input.App
        | NoServer _ -> not (Array.init input.Servers.Length (takesNew input) |> Array.contains true)
        | Pinned _
        | PinnedDownRefused _ -> true
        | Redispatched _
        | NoOtherServer _ -> false
    let drained (input: SelectionInput) = input.Servers |> Array.exists (fun s -> s.Admin <> AdminState.Ready)
    let hits = checkWithCoverage 3000 scenario law (fst >> drained)
    Assert.True(hits > 500L, $"only {hits} cases had a server not Ready")

[<Fact>]
let ``a new client queues on a full server only when every candidate is full`` () =
    let law (input: SelectionInput, cookie) =
        let step = Selection.first (input, cookie)
        let anyFree = Array.init input.Servers.Length (fun i -> takesNew input i && input.Servers[i].HasFreeSlot) |> Array.contains true
        match step.Selection with
        | Balanced(s, _, _) -> input.Servers[s].HasFreeSlot
        | Queued(s, _) -> not anyFree && not input.Servers[s].HasFreeSlot
        | PinnedDownRedispatch(_, s) -> input.Servers[s].HasFreeSlot || not anyFree
        | _ -> true
    let hits = checkWithCoverage 3000 scenario law (fun (input, cookie) -> (Selection.first (input, cookie)).Selection.IsQueued)
    Assert.True(hits > 5L, $"only {hits} cases queued")

[<Fact>]
let ``a retry never picks a tried server while an untried one takes new clients, and says so when none does`` () =
    let withTried =
        gen {
            let! input, _ = scenario
            let n = input.Servers.Length
            let! current = Gen.choose (0, n - 1)
            let! tried = Gen.arrayOfLength n (Gen.elements [ true; false ])
            tried[current] <- true
            let! inserted = Gen.elements [ true; false ]
            return input, tried, current, inserted
        }
    let law (input: SelectionInput, tried: bool array, current, inserted) =
        let step = Selection.retry (input, tried, current, inserted)
        let untried = Array.init tried.Length (fun i -> not tried[i] && takesNew input i)
        match step.Selection with
        | Redispatched(f, s) -> f = current && untried[s] && step.InsertCookie = Persistence.isOn input.App
        | NoOtherServer s -> s = current && not (Array.contains true untried) && step.InsertCookie = (inserted && Persistence.isOn input.App)
        | _ -> false
    let hits =
        checkWithCoverage 3000 withTried law (fun (input, tried, current, inserted) ->
            (Selection.retry (input, tried, current, inserted)).Selection.IsRedispatched)
    Assert.True(hits > 500L, $"only {hits} retries went to another server")
    // A retry reads the round robin; it never moves it.
    Check.One(
        Config.QuickThrowOnFailure.WithMaxTest 500,
        Prop.forAll (Arb.fromGen withTried) (fun (input, tried, current, inserted) ->
            obj.ReferenceEquals((Selection.retry (input, tried, current, inserted)).NextRoundRobin, input.RoundRobin))
    )

/// `count` first choices for clients without a cookie, each from the state the previous one left.
let private firstChoices (input: SelectionInput) (count: int) =
    let rec go (input: SelectionInput) n acc =
        if n = 0 then List.rev acc
        else
            let step = Selection.first (input, [||])
            go { input with RoundRobin = step.NextRoundRobin; Turn = input.Turn + 1 } (n - 1) (step.Selection.Server :: acc)
    go input count []

[<Property(MaxTest = 300)>]
let ``round robin honours the weights in every run of sum(weights) choices among the servers that take new clients`` () =
    Prop.forAll (Arb.fromGen scenario) (fun (input, _) ->
        let input =
            { input with
                App = { input.App with Balance = BalanceAlgorithm.RoundRobin }
                RoundRobin = Balancing.roundRobinInitial
                Servers = input.Servers |> Array.map (fun s -> { s with HasFreeSlot = true }) }
        let usable = Array.init input.Servers.Length (takesNew input)
        let weight i = if usable[i] then input.App.Servers[i].Weight else 0
        let total = Array.init usable.Length weight |> Array.sum
        total = 0
        || firstChoices input (3 * total)
           |> List.chunkBySize total
           |> List.forall (fun window -> Array.init usable.Length (fun i -> window |> List.filter ((=) i) |> List.length = weight i) |> Array.forall id))

[<Fact>]
let ``leastconn sends a new client to a server with the fewest requests per weight`` () =
    let law (input: SelectionInput, _: string array) =
        let input = { input with App = { input.App with Balance = BalanceAlgorithm.LeastConn } }
        match (Selection.first (input, [||])).Selection with
        | Balanced(s, _, _) ->
            let load i = float input.Servers[i].Active / float input.App.Servers[i].Weight
            Array.init input.Servers.Length id
            |> Array.filter (fun i -> takesNew input i && input.Servers[i].HasFreeSlot)
            |> Array.forall (fun i -> load s <= load i)
        | _ -> true
    let hits = checkWithCoverage 2000 scenario law (fun (input, _) -> input.Servers.Length > 1)
    Assert.True(hits > 200L)
