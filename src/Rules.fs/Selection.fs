namespace Lb.Rules

open System

/// One server as the selection sees it at the moment of a choice: what the shell's atomic state holds.
[<Struct>]
type ServerView =
    { /// The health checks' verdict (`Health.isUp`).
      Up: bool
      /// What an operator set: Ready, Drain (optional deadline) or Maint.
      Admin: AdminState
      /// Requests in flight to the server now.
      Active: int
      /// Whether a request would get one of its `maxconn` slots without queueing (always, without `maxconn`).
      HasFreeSlot: bool }

/// Everything one server choice reads: the app's config, the request's rule pin, the servers' state now and
/// the balancer's memory. The shell builds it from its state holders; `lb explain` builds the idle one.
type SelectionInput =
    { App: AppConfig
      /// Server indexes a rule's `pin` narrows every choice to; empty: no pin.
      Pin: int array
      /// Index-aligned with `App.Servers`; a missing entry counts as a server that takes nothing.
      Servers: ServerView array
      /// The servers' weights, index-aligned with `App.Servers`: fixed by the config, so the shell builds the array
      /// once per config generation rather than per request.
      Weights: int array
      /// The round robin of this pin group (`Balancing.roundRobin`); used when the app balances by round robin.
      RoundRobin: RoundRobinState
      /// The leastconn tie-break offset: the shell counts it up from 0 by one per choice.
      Turn: int
      /// The two draws of `random(2)` (any ints); unused by the other algorithms.
      Draw1: int
      Draw2: int
      /// `[defaults] redispatch`: whether a client pinned to an unusable server is sent elsewhere.
      Redispatch: bool
      /// For a drain deadline.
      Now: DateTimeOffset }

/// The outcome of one server choice, named as HAProxy's cookie outcomes and YARP's affinity statuses name theirs.
type Selection =
    /// The cookie names a server that keeps pinned clients now: send there, set no cookie (HAProxy `indirect`).
    | Pinned of server: int
    /// The cookie names a server that is down, in MAINT or past its drain deadline, and `redispatch` is on:
    /// balanced to `server`, with a new cookie.
    | PinnedDownRedispatch of pinnedTo: int * server: int
    /// As above with `redispatch` off: the client stays bound to its server and gets 503.
    | PinnedDownRefused of pinnedTo: int
    /// No usable cookie (`why`): the algorithm chose `server` among those with a free slot.
    | Balanced of server: int * algorithm: BalanceAlgorithm * why: CookieOutcome
    /// As `Balanced`, but every usable server is at its `maxconn`: the request waits in `server`'s queue.
    | Queued of server: int * why: CookieOutcome
    /// No server takes a new client (all down, in MAINT, draining, weight 0 or outside the pin): 503.
    | NoServer of why: CookieOutcome
    /// A retry after a failed attempt on `from`, to another server not tried yet (`redispatch`), with a new cookie.
    | Redispatched of from: int * server: int
    /// A retry with `redispatch` on, but every other server is tried or unusable: the same server again.
    | NoOtherServer of server: int

    /// The server the request goes to, or -1 (refused: 503).
    member this.Server =
        match this with
        | Pinned s
        | PinnedDownRedispatch(_, s)
        | Balanced(s, _, _)
        | Queued(s, _)
        | Redispatched(_, s)
        | NoOtherServer s -> s
        | PinnedDownRefused _
        | NoServer _ -> -1

    /// The server a redispatch moved the client away from (a redispatch to count on it), or -1. A client refused with
    /// 503 (PinnedDownRefused) was not redispatched.
    member this.BrokenPin =
        match this with
        | PinnedDownRedispatch(p, _) -> p
        | Redispatched(f, _) -> f
        | _ -> -1

/// One choice and the balancer memory after it (the same object when the choice did not move it).
type SelectionStep =
    { Selection: Selection
      /// Whether the response carries a new persistence cookie for `Selection.Server` (first visit, forged
      /// cookie, redispatch); false when persistence is off.
      InsertCookie: bool
      /// The round robin to store (compare-and-swap against `SelectionInput.RoundRobin`).
      NextRoundRobin: RoundRobinState }

/// Choosing the server for one attempt of a request: persistence first, then the app's algorithm, with the
/// free-slot preference, rule pins, drain and redispatch. The shell calls `first` once per request and
/// `retry` once per failed attempt that `Retry.decide` sends to another server; `lb explain` calls `first`.
[<RequireQualifiedAccess>]
module Selection =

    let private inPin (input: SelectionInput) i = input.Pin.Length = 0 || Array.contains i input.Pin

    let private view (input: SelectionInput) i =
        if i < input.Servers.Length then ValueSome input.Servers[i] else ValueNone

    /// A client without a valid cookie may be sent here: up, Ready (`Admin.usableForNew`), inside the pin, and a
    /// weight above 0 (HAProxy: weight 0 takes no new traffic). The weight counts here, not only in `Balancing`,
    /// or a weight-0 server with a free slot would hide full servers from the free-slot preference.
    let private takesNew (input: SelectionInput) i =
        match view input i with
        | ValueSome s -> inPin input i && Admin.usableForNew (s.Up, s.Admin) && i < input.Weights.Length && input.Weights[i] > 0
        | ValueNone -> false

    /// A client pinned here keeps it: up, not MAINT, drain deadline ahead (`Admin.usableForPinned`).
    let private keepsPinned (input: SelectionInput) i =
        match view input i with
        | ValueSome s -> Admin.usableForPinned (s.Up, s.Admin, input.Now)
        | ValueNone -> false

    let private hasFreeSlot (input: SelectionInput) i =
        match view input i with
        | ValueSome s -> s.HasFreeSlot
        | ValueNone -> false

    let private actives (input: SelectionInput) =
        Array.init input.App.Servers.Length (fun i -> match view input i with ValueSome s -> s.Active | ValueNone -> 0)

    /// The candidates for a new client, less `excluded`: those that take new clients, and of those only the ones
    /// with a free slot when any has one (a full server queues a client only when all are full, as HAProxy's
    /// fwrr skips a full server). The flag says every candidate is full.
    let private candidates (input: SelectionInput) (excluded: int -> bool) : bool array * bool =
        let usable = Array.init input.App.Servers.Length (fun i -> takesNew input i && not (excluded i))
        let free = usable |> Array.mapi (fun i u -> u && hasFreeSlot input i)
        if Array.contains true free then free, false
        else usable, Array.contains true usable

    /// The app's algorithm among `usable`; the round robin's new memory only when `advance` (a first choice).
    let private pick (input: SelectionInput) (usable: bool array) (advance: bool) : (int * RoundRobinState) option =
        let app = input.App
        match app.Balance with
        | BalanceAlgorithm.RoundRobin when advance -> Balancing.roundRobin (input.RoundRobin, usable, input.Weights)
        | BalanceAlgorithm.RoundRobin ->
            Balancing.roundRobinPeek (input.RoundRobin, usable, input.Weights) |> Option.map (fun i -> i, input.RoundRobin)
        | BalanceAlgorithm.LeastConn ->
            Balancing.leastConn (usable, input.Weights, actives input, input.Turn) |> Option.map (fun i -> i, input.RoundRobin)
        | BalanceAlgorithm.RandomTwoChoices ->
            Balancing.randomTwoChoices (usable, input.Weights, actives input, input.Draw1, input.Draw2)
            |> Option.map (fun i -> i, input.RoundRobin)

    let private step (input: SelectionInput) selection insert next =
        { Selection = selection
          InsertCookie = insert && Persistence.isOn input.App
          NextRoundRobin = next }

    /// A new client's server by the algorithm: the server, whether every candidate was full, the new memory.
    let private balanced (input: SelectionInput) : (int * bool * RoundRobinState) option =
        let usable, allFull = candidates input (fun _ -> false)
        pick input usable true |> Option.map (fun (i, next) -> i, allFull, next)

    /// The first choice for a request with these `Cookie:` header values. The cookie pins the client when it
    /// names a server that keeps pinned clients now; a cookie naming a server the rule's pin leaves out counts
    /// as unknown. A pinned server that cannot keep its client is redispatched (new cookie) with `redispatch`,
    /// else the request is refused (PinnedDownRefused). Otherwise the algorithm chooses. Never throws; a
    /// `Servers` array shorter than the app's servers leaves the missing ones out.
    [<CompiledName("First")>]
    let first (input: SelectionInput, cookieHeaders: string array) : SelectionStep =
        let app = input.App
        let refused why = step input (NoServer why) false input.RoundRobin
        match Persistence.cookieOutcome (app, cookieHeaders) with
        | NamesServer i when inPin input i && keepsPinned input i -> step input (Pinned i) false input.RoundRobin
        | NamesServer i when inPin input i && input.Redispatch ->
            match balanced input with
            | Some(s, _, next) -> step input (PinnedDownRedispatch(i, s)) true next
            | None -> refused (NamesServer i)
        | NamesServer i when inPin input i -> step input (PinnedDownRefused i) false input.RoundRobin
        | outcome ->
            let why = match outcome with NamesServer i -> UnknownValue app.Servers[i].CookieValue | other -> other
            match balanced input with
            | Some(s, true, next) -> step input (Queued(s, why)) true next
            | Some(s, false, next) -> step input (Balanced(s, app.Balance, why)) true next
            | None -> refused why

    /// The choice for a retry that `Retry.decide` sends to another server (`RetryOtherServer`), after attempts on
    /// the servers flagged in `tried` failed, the last on `current`: the app's algorithm among the untried servers
    /// that take new clients (the round robin is read, not advanced: a retry sees a smaller set, and storing
    /// that set's turn would restart the app's rotation), Redispatched with a new cookie; NoOtherServer when no
    /// untried one is usable, keeping `cookieInserted` (whether the client already gets a new cookie).
    [<CompiledName("Retry")>]
    let retry (input: SelectionInput, tried: bool array, current: int, cookieInserted: bool) : SelectionStep =
        let wasTried i = i = current || (i < tried.Length && tried[i])
        match candidates input wasTried with
        | usable, _ ->
            match pick input usable false with
            | Some(i, _) -> step input (Redispatched(current, i)) true input.RoundRobin
            | None -> step input (NoOtherServer current) cookieInserted input.RoundRobin

    /// The servers' weights of an app, index-aligned, as `SelectionInput.Weights` takes them.
    [<CompiledName("WeightsOf")>]
    let weightsOf (app: AppConfig) : int array = app.Servers |> Array.map (fun s -> s.Weight)

    /// The input for a client arriving at an idle app: every server up, Ready and empty, the balancer at its
    /// start, the first leastconn turn, both random draws 0. A freshly started lb's first choice is this one.
    [<CompiledName("Idle")>]
    let idle (app: AppConfig, pin: int array, redispatch: bool, now: DateTimeOffset) : SelectionInput =
        { App = app
          Pin = pin
          Servers = Array.create app.Servers.Length { Up = true; Admin = AdminState.Ready; Active = 0; HasFreeSlot = true }
          Weights = weightsOf app
          RoundRobin = Balancing.roundRobinInitial
          Turn = 0
          Draw1 = 0
          Draw2 = 0
          Redispatch = redispatch
          Now = now }

    /// The text of the 503 a refused selection answers with (the error page shows it; no client data in it).
    [<CompiledName("RefusalText")>]
    let refusalText (app: AppConfig, selection: Selection) : string =
        match selection with
        | PinnedDownRefused p when p < app.Servers.Length ->
            $"server {app.Servers[p].Name} of {app.Name} is not available and redispatch is off"
        | _ -> $"no server of {app.Name} is available"
