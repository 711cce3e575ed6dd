namespace Lb.Rules

/// Round-robin memory of one app: nginx's per-server "current weight", and the effective weights
/// (weight if available, else 0) it was computed for. Immutable: `Balancing.roundRobin` returns a new one,
/// so the shell can swap it atomically (compare-and-swap) without a lock.
type RoundRobinState =
    private
        { Current: int64[]
          Effective: int[] }

/// Choosing a server for a request that carries no valid persistence cookie: HAProxy's `balance`
/// `roundrobin`, `leastconn` and `random(2)`.
///
/// Every function takes the app's servers as index-aligned arrays: `up` (health and admin state: false
/// for a server that is down or in maintenance) and `weights` (HAProxy `weight`). A server is available
/// when its index is in both arrays, `up` is true and its weight is above 0; weight 0 takes no new
/// traffic, as in HAProxy. The result is a server index, or None when no server is available (the app
/// answers 503, the seed's `nbsrv ge 1` gate). Nothing here reads a clock or a random generator:
/// rotation offsets and random draws are arguments.
[<RequireQualifiedAccess>]
module Balancing =

    let private effectiveWeights (up: bool[], weights: int[]) =
        Array.init weights.Length (fun i -> if i < up.Length && up.[i] && weights.[i] > 0 then weights.[i] else 0)

    /// A non-negative index below `n` from any int, negative ones included.
    let private wrap (value: int64) (n: int64) = ((value % n) + n) % n

    /// The state before the first pick (and a valid state for any server list).
    [<CompiledName("RoundRobinInitial")>]
    let roundRobinInitial: RoundRobinState = { Current = [||]; Effective = [||] }

    /// Smooth weighted round robin (nginx `ngx_http_upstream_get_peer`): every available server adds its
    /// weight to its current weight, the largest current weight wins (the lowest index on a tie), and the
    /// winner gives back the total. With weights 5,1,1 it picks a a b a c a a, not a a a a a b c: heavy
    /// servers are interleaved, and every run of `total` picks holds each server exactly `weight` times.
    /// When the available servers or their weights differ from the state's (a server went down or came
    /// back, a reload), the state starts over from zero so the spread holds from that pick on; nginx keeps
    /// stale current weights instead, which can send a burst to a returning server.
    [<CompiledName("RoundRobin")>]
    let roundRobin (state: RoundRobinState, up: bool[], weights: int[]) : (int * RoundRobinState) option =
        let effective = effectiveWeights (up, weights)
        let total = effective |> Array.sumBy int64

        if total = 0L then
            None
        else
            let current =
                if state.Effective = effective then Array.copy state.Current
                else Array.zeroCreate effective.Length

            let mutable best = -1

            for i in 0 .. effective.Length - 1 do
                if effective.[i] > 0 then
                    current.[i] <- current.[i] + int64 effective.[i]

                    if best < 0 || current.[i] > current.[best] then
                        best <- i

            current.[best] <- current.[best] - total
            Some(best, { Current = current; Effective = effective })

    /// The server the round robin at `state` would pick next if only `up` were available, without moving it:
    /// the largest current weight plus weight among them (the lowest index on a tie). A retry uses it, as
    /// feeding the retry's smaller set to `roundRobin` would restart the app's rotation for every client.
    [<CompiledName("RoundRobinPeek")>]
    let roundRobinPeek (state: RoundRobinState, up: bool[], weights: int[]) : int option =
        let effective = effectiveWeights (up, weights)
        let current i = if i < state.Current.Length then state.Current.[i] else 0L
        let mutable best = -1

        for i in 0 .. effective.Length - 1 do
            if effective.[i] > 0
               && (best < 0 || current i + int64 effective.[i] > current best + int64 effective.[best]) then
                best <- i

        if best < 0 then None else Some best

    /// Whether a (conns, weight) load is strictly below another: conns/weight compared by cross-multiplying,
    /// so no rounding and no division (nginx least_conn compares `conns * best->weight < best->conns * weight`).
    let private lighter (connsA: int64, weightA: int) (connsB: int64, weightB: int) =
        connsA * int64 weightB < connsB * int64 weightA

    let private conns (active: int[]) i =
        if i < active.Length then max 0L (int64 active.[i]) else 0L

    /// HAProxy/nginx `leastconn`: an available server with the fewest active connections per unit of
    /// weight. Ties go to the first tied server at or after `offset` (wrapped, any int), so a rotating
    /// offset spreads idle servers evenly instead of always loading the first. `active` is index-aligned;
    /// a missing or negative count is taken as 0.
    [<CompiledName("LeastConn")>]
    let leastConn (up: bool[], weights: int[], active: int[], offset: int) : int option =
        let effective = effectiveWeights (up, weights)
        let n = effective.Length

        if n = 0 then
            None
        else
            let start = int (wrap (int64 offset) (int64 n))
            let mutable best = -1

            for k in 0 .. n - 1 do
                let i = (start + k) % n

                if effective.[i] > 0
                   && (best < 0 || lighter (conns active i, effective.[i]) (conns active best, effective.[best])) then
                    best <- i

            if best < 0 then None else Some best

    /// One weighted random draw among available servers: `value` (any int) picks server i with probability
    /// weight_i / total when it is uniform. Exposed so the two candidates of `randomTwoChoices` are checkable.
    [<CompiledName("Draw")>]
    let draw (up: bool[], weights: int[], value: int) : int option =
        let effective = effectiveWeights (up, weights)
        let total = effective |> Array.sumBy int64

        if total = 0L then
            None
        else
            let target = wrap (int64 value) total
            let mutable cumulative = 0L
            let mutable chosen = -1

            for i in 0 .. effective.Length - 1 do
                if chosen < 0 then
                    cumulative <- cumulative + int64 effective.[i]

                    if target < cumulative then
                        chosen <- i

            Some chosen

    /// HAProxy `balance random(2)`, the "power of two choices": two weighted draws from `draw1` and `draw2`,
    /// then the less loaded of the two by active connections per weight (the first on a tie). It needs no
    /// shared round-robin state and avoids leastconn's herd on a just-emptied server.
    [<CompiledName("RandomTwoChoices")>]
    let randomTwoChoices (up: bool[], weights: int[], active: int[], draw1: int, draw2: int) : int option =
        match draw (up, weights, draw1), draw (up, weights, draw2) with
        | Some a, Some b ->
            if lighter (conns active b, weights.[b]) (conns active a, weights.[a]) then Some b else Some a
        | _ -> None
