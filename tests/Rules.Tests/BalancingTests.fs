module Lb.Rules.Tests.BalancingTests

open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules
open Lb.Rules.Tests.Generators

let private forAll (g: Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

let private available (p: Pool) i = (effective p).[i] > 0

/// `count` round-robin picks from the initial state (stops early only if nothing is available).
let private picks (p: Pool) (count: int) =
    let rec go state n acc =
        if n = 0 then
            List.rev acc
        else
            match Balancing.roundRobin (state, p.Up, p.Weights) with
            | Some(i, next) -> go next (n - 1) (i :: acc)
            | None -> List.rev acc

    go Balancing.roundRobinInitial count []

/// For every prefix of a pick sequence: (prefix length, picks per server so far).
let private prefixCounts (n: int) (sequence: int list) =
    sequence
    |> List.scan
        (fun (length, counts: int[]) i -> length + 1, Array.init n (fun j -> if j = i then counts.[j] + 1 else counts.[j]))
        (0, Array.zeroCreate n)
    |> List.tail

// ---- Round robin -----------------------------------------------------------------------------------

[<Fact>]
let ``round robin interleaves heavy servers as nginx does: 5,1,1 gives a a b a c a a`` () =
    let p = { Weights = [| 5; 1; 1 |]; Up = [| true; true; true |] }
    Assert.Equal<int list>([ 0; 0; 1; 0; 2; 0; 0 ], picks p 7)

[<Property>]
let ``N rounds of total-weight picks give every up server exactly N times its weight`` () =
    forAll (Gen.zip livePool (Gen.choose (1, 4))) (fun (p, rounds) ->
        let weights = effective p
        let total = Array.sum weights
        let sequence = picks p (rounds * total)
        Array.init weights.Length (fun i -> sequence |> List.filter ((=) i) |> List.length) = Array.map ((*) rounds) weights)

/// Smooth round robin never runs a full pick ahead of a server's share in any prefix (the chosen server
/// always has a positive current weight). It can fall behind by more than one pick in some prefixes with
/// three servers or more (e.g. weights 5,25,3,27,77,1,77,1 at pick 113 is 1.28 behind); the proven bound
/// is (available servers − 1), which is ±1 with two servers. Full rounds are exact (property above).
[<Property>]
let ``in every prefix round robin is under one pick ahead and under (servers - 1) behind each share`` () =
    forAll (Gen.zip livePool (Gen.choose (1, 4))) (fun (p, rounds) ->
        let weights = effective p
        let total = Array.sum weights
        let servers = weights |> Array.filter (fun w -> w > 0) |> Array.length
        let slack = max 1 (servers - 1)

        prefixCounts weights.Length (picks p (rounds * total))
        |> List.forall (fun (length, counts) ->
            Array.forall2
                (fun count weight ->
                    // count − length·w/W < 1 and > −slack, multiplied out by W to stay in integers.
                    total * count - length * weight < total && total * count - length * weight > -slack * total)
                counts
                weights))

[<Property>]
let ``round robin never picks a down or zero-weight server, whatever changes between picks`` () =
    forAll (Gen.nonEmptyListOf pool) (fun pools ->
        pools
        |> List.fold
            (fun (state, ok) p ->
                match Balancing.roundRobin (state, p.Up, p.Weights) with
                | Some(i, next) -> next, ok && available p i
                | None -> state, ok && Array.sum (effective p) = 0)
            (Balancing.roundRobinInitial, true)
        |> snd)

[<Property>]
let ``after the up set changes, full rounds from the change are exact again`` () =
    let scenario =
        gen {
            let! before = livePool
            let! warmUp = Gen.choose (0, 20)
            let! after = Gen.arrayOfLength before.Up.Length (Gen.elements [ true; false ])
            let afterPool = { before with Up = after }
            return before, warmUp, afterPool
        }
        |> Gen.filter (fun (_, _, p) -> Array.sum (effective p) > 0)

    forAll scenario (fun (before, warmUp, after) ->
        let step state (p: Pool) =
            match Balancing.roundRobin (state, p.Up, p.Weights) with
            | Some(i, next) -> i, next
            | None -> failwith "a live pool had nothing available"

        let warmed = List.fold (fun s _ -> snd (step s before)) Balancing.roundRobinInitial [ 1..warmUp ]
        let weights = effective after
        let total = Array.sum weights
        let sequence = List.fold (fun (s, acc) _ -> let i, next = step s after in next, i :: acc) (warmed, []) [ 1..total ] |> snd
        Array.init weights.Length (fun i -> sequence |> List.filter ((=) i) |> List.length) = weights)

[<Fact>]
let ``round robin answers None when every server is down or drained`` () =
    Assert.Equal(None, Balancing.roundRobin (Balancing.roundRobinInitial, [| false; true |], [| 3; 0 |]))
    Assert.Equal(None, Balancing.roundRobin (Balancing.roundRobinInitial, [||], [||]))

// ---- Leastconn -------------------------------------------------------------------------------------

let private leastConnScenario =
    gen {
        let! p = pool
        let! active = activeFor p
        let! offset = Gen.oneof [ Gen.choose (-20, 20); Gen.elements [ System.Int32.MinValue; System.Int32.MaxValue ] ]
        return p, active, offset
    }

let private load (active: int[]) i = int64 (max 0 active.[i])

[<Property(MaxTest = 300)>]
let ``leastconn picks a minimum of connections per weight among available servers`` () =
    forAll leastConnScenario (fun (p, active, offset) ->
        let weights = effective p

        match Balancing.leastConn (p.Up, p.Weights, active, offset) with
        | None -> Array.sum weights = 0
        | Some i ->
            available p i
            && Array.indexed weights
               |> Array.forall (fun (j, w) -> w = 0 || load active i * int64 w <= load active j * int64 weights.[i]))

[<Property(MaxTest = 300)>]
let ``leastconn breaks ties at the first tied server from the offset`` () =
    forAll leastConnScenario (fun (p, active, offset) ->
        let weights = effective p
        let n = weights.Length
        let start = ((offset % n) + n) % n

        match Balancing.leastConn (p.Up, p.Weights, active, offset) with
        | None -> true
        | Some i ->
            let tied j = weights.[j] > 0 && load active i * int64 weights.[j] = load active j * int64 weights.[i]
            let rotation = List.init n (fun k -> (start + k) % n)
            rotation |> List.find tied = i)

[<Property>]
let ``a rotating offset spreads idle equal servers evenly`` () =
    forAll (Gen.zip (Gen.choose (1, 8)) (Gen.choose (1, 10))) (fun (n, weight) ->
        let chosen =
            List.init n (fun offset -> Balancing.leastConn (Array.create n true, Array.create n weight, Array.zeroCreate n, offset))
        List.sort chosen = List.init n Some)

// ---- Random with two choices -----------------------------------------------------------------------

let private randomScenario =
    gen {
        let! p = pool
        let! active = activeFor p
        let! draws = Gen.two (ArbMap.defaults |> ArbMap.generate<int>)
        return p, active, draws
    }

[<Property(MaxTest = 300)>]
let ``random two choices never picks the more loaded of its two candidates`` () =
    forAll randomScenario (fun (p, active, (r1, r2)) ->
        let a = Balancing.draw (p.Up, p.Weights, r1)
        let b = Balancing.draw (p.Up, p.Weights, r2)

        match a, b, Balancing.randomTwoChoices (p.Up, p.Weights, active, r1, r2) with
        | Some a, Some b, Some chosen ->
            let other = if chosen = a then b else a
            (chosen = a || chosen = b)
            && load active chosen * int64 p.Weights.[other] <= load active other * int64 p.Weights.[chosen]
        | None, None, None -> Array.sum (effective p) = 0
        | _ -> false)

[<Property(MaxTest = 300)>]
let ``random two choices never picks a down server and answers None only when none is up`` () =
    forAll randomScenario (fun (p, active, (r1, r2)) ->
        match Balancing.randomTwoChoices (p.Up, p.Weights, active, r1, r2) with
        | Some i -> available p i
        | None -> Array.sum (effective p) = 0)

[<Property>]
let ``a draw picks each server in proportion to its weight`` () =
    forAll (Gen.zip livePool (Gen.choose (-3, 3))) (fun (p, shift) ->
        let weights = effective p
        let total = Array.sum weights
        let drawn = List.init total (fun r -> Balancing.draw (p.Up, p.Weights, r + shift * total) |> Option.get)
        Array.init weights.Length (fun i -> drawn |> List.filter ((=) i) |> List.length) = weights)
