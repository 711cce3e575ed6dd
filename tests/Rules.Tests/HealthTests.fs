module Lb.Rules.Tests.HealthTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules
open Lb.Rules.Tests.Generators

let private forAll (g: Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

let private valid rise fall =
    match Health.thresholds (rise, fall) with
    | Ok t -> t
    | Error e -> failwithf "%A" e

/// Runs results through `step`, keeping every state and transition.
let private run (state: HealthState) (results: bool list) =
    results
    |> List.scan (fun (s, _) ok -> Health.step (s, ok)) (state, None)
    |> List.tail

let private last state results =
    match run state results with
    | [] -> state, None
    | steps -> List.last steps

// ---- Rise and fall ---------------------------------------------------------------------------------

[<Property(MaxTest = 300)>]
let ``a down server goes up after exactly rise consecutive successes`` () =
    forAll reachedState (fun state ->
        let t = state.Thresholds
        let down, _ = last state (List.replicate t.Fall false)
        let almost = run down (List.replicate (t.Rise - 1) true)
        let upState, transition = last down (List.replicate t.Rise true)
        not down.IsUp
        && almost |> List.forall (fun (s, tr) -> not s.IsUp && tr.IsNone)
        && upState.IsUp
        && transition = Some HealthTransition.WentUp)

[<Property(MaxTest = 300)>]
let ``an up server goes down after exactly fall consecutive failures`` () =
    forAll reachedState (fun state ->
        let t = state.Thresholds
        let up, _ = last state (List.replicate t.Rise true)
        let almost = run up (List.replicate (t.Fall - 1) false)
        let downState, transition = last up (List.replicate t.Fall false)
        up.IsUp
        && almost |> List.forall (fun (s, tr) -> s.IsUp && tr.IsNone)
        && not downState.IsUp
        && transition = Some HealthTransition.WentDown)

/// The spec in plain words: up flips when the run of opposite results reaches rise or fall.
/// (up, run) where run counts the consecutive results that push towards the other state.
let private model (rise: int, fall: int) (up: bool, run: int) (success: bool) =
    match up, success with
    | true, true -> true, 0
    | true, false -> if run + 1 = fall then false, 0 else true, run + 1
    | false, false -> false, 0
    | false, true -> if run + 1 = rise then true, 0 else false, run + 1

[<Property(MaxTest = 500)>]
let ``up and down follow a model that counts consecutive results`` () =
    forAll (Gen.zip3 thresholds (Gen.elements [ true; false ]) checkResults) (fun (t, startUp, results) ->
        // Started up, the server has no history: one failure takes it down (HAProxy's default).
        let start = if startUp then (true, t.Fall - 1) else (false, 0)
        let modelled = results |> List.scan (model (t.Rise, t.Fall)) start |> List.tail
        let actual = run (Health.initial (t, startUp)) results
        List.forall2 (fun (s: HealthState, _) (up, _) -> s.IsUp = up) actual modelled)

[<Property(MaxTest = 500)>]
let ``the counter never leaves 0 to rise+fall-1`` () =
    forAll (Gen.zip3 thresholds (Gen.elements [ true; false ]) checkResults) (fun (t, startUp, results) ->
        let initial = Health.initial (t, startUp)
        initial :: (run initial results |> List.map fst)
        |> List.forall (fun s -> s.Health >= 0 && s.Health <= t.Rise + t.Fall - 1 && s.IsUp = (s.Health >= t.Rise)))

[<Property(MaxTest = 500)>]
let ``a transition is reported exactly when up or down changes`` () =
    forAll (Gen.zip reachedState (Gen.elements [ true; false ])) (fun (state, ok) ->
        let next, transition = Health.step (state, ok)
        match transition with
        | Some HealthTransition.WentUp -> not state.IsUp && next.IsUp
        | Some HealthTransition.WentDown -> state.IsUp && not next.IsUp
        | None -> state.IsUp = next.IsUp)

[<Fact>]
let ``the seed's rise 2 fall 2: started up falls at the first failure, then needs two successes`` () =
    let t = valid 2 2
    let start = Health.initial (t, true)
    Assert.True(Health.isUp start)
    let down, wentDown = Health.step (start, false)
    Assert.Equal(Some HealthTransition.WentDown, wentDown)
    let one, none = Health.step (down, true)
    Assert.False(Health.isUp one)
    Assert.Equal(None, none)
    let up, wentUp = Health.step (one, true)
    Assert.Equal(Some HealthTransition.WentUp, wentUp)
    Assert.Equal(3, up.Health)
    // Fully up now: one failure is absorbed, a success restores full health.
    let absorbed, _ = Health.step (up, false)
    Assert.True(absorbed.IsUp)
    let restored, _ = Health.step (absorbed, true)
    Assert.Equal(3, restored.Health)

[<Fact>]
let ``thresholds reject rise or fall below 1, listing both`` () =
    match Health.thresholds (0, -1) with
    | Ok _ -> failwith "accepted rise 0 fall -1"
    | Error errors -> Assert.Equal(2, errors.Length)

    Assert.True(Result.isOk (Health.thresholds (1, 1)))

// ---- Expected status -------------------------------------------------------------------------------

[<Property>]
let ``the default expects exactly 2xx and 3xx`` () =
    forAll status (fun s -> Health.isExpectedStatus (Health.defaultExpected, s) = (s >= 200 && s <= 399))

[<Property(MaxTest = 300)>]
let ``a parsed spec expects exactly the statuses its items name`` () =
    let scenario =
        gen {
            let! items = Gen.nonEmptyListOf statusItem
            let! spaces = Gen.listOfLength items.Length (Gen.elements [ ""; " "; "  " ])
            let spec = List.map2 (fun (text, _) sp -> sp + text + sp) items spaces |> String.concat ","
            let! statuses = Gen.listOf status
            return items, spec, statuses
        }

    forAll scenario (fun (items, spec, statuses) ->
        match Health.parseExpected spec with
        | Error _ -> false
        | Ok expected ->
            statuses
            |> List.forall (fun s ->
                Health.isExpectedStatus (expected, s) = (items |> List.exists (fun (_, (lo, hi)) -> s >= lo && s <= hi)))
            && Health.parseExpected (string expected) = Ok expected)

[<Fact>]
let ``a bad spec is rejected with one error per bad item`` () =
    match Health.parseExpected "200-, abc, 600, 399-200, 404, 6xx" with
    | Ok e -> failwithf "accepted %O" e
    | Error errors -> Assert.Equal(5, errors.Length)

    Assert.True(Result.isError (Health.parseExpected " "))
    Assert.Equal(Ok "200-299,300-399,404", Health.parseExpected "2xx, 300-399 ,404" |> Result.map string)

// ---- Schedule (spread-checks) ----------------------------------------------------------------------

[<Property(MaxTest = 500)>]
let ``the next check is due within plus or minus spread percent of the interval`` () =
    forAll (Gen.zip3 interval (Gen.choose (0, Health.MaxSpread)) unitDraw) (fun (interval, spread, u) ->
        let delay = (Health.nextCheckDelay (interval, spread, u)).Ticks
        let jitter = interval.Ticks * int64 spread / 100L
        delay > interval.Ticks - jitter && delay <= interval.Ticks + jitter
        || jitter = 0L && delay = interval.Ticks)

[<Property>]
let ``a later draw never gives a longer delay`` () =
    forAll (Gen.zip3 interval (Gen.choose (0, Health.MaxSpread)) (Gen.two unitDraw)) (fun (interval, spread, (u1, u2)) ->
        let early, late = min u1 u2, max u1 u2
        Health.nextCheckDelay (interval, spread, late) <= Health.nextCheckDelay (interval, spread, early))

/// HAProxy's jitter is centred: a draw of u and one of 1 − u land on either side of the interval, as far
/// from it (to the tick, up to rounding), and a draw of 0 is the latest check.
[<Property(MaxTest = 300)>]
let ``jitter mirrors around the interval and a draw of 0 is the latest`` () =
    forAll (Gen.zip3 interval (Gen.choose (0, Health.MaxSpread)) unitDraw) (fun (interval, spread, u) ->
        let delay u = (Health.nextCheckDelay (interval, spread, u)).Ticks
        let jitter = interval.Ticks * int64 spread / 100L
        abs (delay u - interval.Ticks + (delay (1.0 - u) - interval.Ticks)) <= 2L
        && delay 0.0 = interval.Ticks + jitter)

[<Property>]
let ``spread outside 0 to 50 percent is clamped`` () =
    forAll (Gen.zip3 interval (Gen.choose (-100, 200)) unitDraw) (fun (interval, spread, u) ->
        Health.nextCheckDelay (interval, spread, u) = Health.nextCheckDelay (interval, Math.Clamp(spread, 0, 50), u))

[<Fact>]
let ``the seed's spread-checks 5 on inter 10s`` () =
    let at u = Health.nextCheckDelay (TimeSpan.FromSeconds 10.0, 5, u)
    Assert.Equal(TimeSpan.FromSeconds 10.5, at 0.0)
    Assert.Equal(TimeSpan.FromSeconds 10.0, at 0.5)
    Assert.True(at 0.9999999999999999 > TimeSpan.FromSeconds 9.5)
    Assert.Equal(TimeSpan.FromSeconds 10.0, Health.nextCheckDelay (TimeSpan.FromSeconds 10.0, 0, 0.3))
