namespace Lb.Rules

open System
open System.Globalization

/// What an operator set a server to from the stats page (HAProxy's `set server state ready|drain|maint`).
/// Runtime state, not config: a restart starts every server Ready.
[<RequireQualifiedAccess>]
type AdminState =
    /// Takes traffic whenever its health check says it is up.
    | Ready
    /// No new clients; clients pinned to it by their persistence cookie go on reaching it, until `deadline`
    /// if one is set, after which they are redispatched to another server (with a new cookie).
    | Drain of deadline: DateTimeOffset option
    /// No traffic at all: pinned clients are redispatched at once.
    | Maint

/// The state a server shows on the stats page and in metrics: the admin state wins over health.
[<RequireQualifiedAccess>]
type ServerStatus =
    | Up
    | Down
    | Drain
    | Maint

    /// `UP`, `DOWN`, `DRAIN`, `MAINT`, as HAProxy's stats page writes them.
    override s.ToString() =
        match s with
        | Up -> "UP"
        | Down -> "DOWN"
        | Drain -> "DRAIN"
        | Maint -> "MAINT"

/// Pure decisions about which servers take which traffic, given health and admin state. The shell keeps the
/// state and passes `now`; nothing here reads a clock.
[<RequireQualifiedAccess>]
module Admin =

    [<CompiledName("Ready")>]
    let ready = AdminState.Ready

    [<CompiledName("Maint")>]
    let maint = AdminState.Maint

    /// DRAIN without a deadline: pinned clients stay as long as they come back.
    [<CompiledName("Drain")>]
    let drain = AdminState.Drain None

    /// DRAIN until `deadline`; from then on pinned clients are redispatched too.
    [<CompiledName("DrainUntil")>]
    let drainUntil (deadline: DateTimeOffset) = AdminState.Drain(Some deadline)

    /// Whether a server takes a client that has no valid cookie (balancing, redispatch, retries on another
    /// server): only when its check says up and the operator left it Ready.
    [<CompiledName("UsableForNew")>]
    let usableForNew (healthUp: bool, admin: AdminState) : bool =
        healthUp && admin = AdminState.Ready

    /// Whether a server keeps a client whose persistence cookie names it: up, and Ready, or draining with no
    /// deadline or one still ahead of `now` (a deadline equal to `now` has passed). Maint never.
    [<CompiledName("UsableForPinned")>]
    let usableForPinned (healthUp: bool, admin: AdminState, now: DateTimeOffset) : bool =
        healthUp
        && match admin with
           | AdminState.Ready -> true
           | AdminState.Drain None -> true
           | AdminState.Drain(Some deadline) -> now < deadline
           | AdminState.Maint -> false

    /// What the stats page shows: MAINT and DRAIN before health (an operator's choice explains the traffic
    /// better than the check), then UP or DOWN.
    [<CompiledName("Status")>]
    let status (healthUp: bool, admin: AdminState) : ServerStatus =
        match admin with
        | AdminState.Maint -> ServerStatus.Maint
        | AdminState.Drain _ -> ServerStatus.Drain
        | AdminState.Ready -> if healthUp then ServerStatus.Up else ServerStatus.Down

    /// Upper bound of a drain deadline: a week. Longer is MAINT's job.
    let MaxDrainSeconds = 7 * 24 * 3600

    /// An admin action as the stats page posts it: `action` is `ready`, `drain` or `maint` (any case);
    /// `drainSeconds` is empty (no deadline) or a whole number of seconds from `now`, 1..604800, and only goes
    /// with `drain`. Rejects any other action, a deadline that is not such a number, and a deadline with
    /// another action.
    [<CompiledName("ParseAction")>]
    let parseAction (action: string, drainSeconds: string, now: DateTimeOffset) : Result<AdminState, string> =
        let seconds = drainSeconds.Trim()
        match action.Trim().ToLowerInvariant(), seconds with
        | "ready", "" -> Ok AdminState.Ready
        | "maint", "" -> Ok AdminState.Maint
        | "drain", "" -> Ok drain
        | "drain", text ->
            match Int32.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture) with
            | true, s when s >= 1 && s <= MaxDrainSeconds -> Ok(drainUntil (now.AddSeconds(float s)))
            | _ -> Error $"'{text}' is not a drain deadline: give whole seconds from 1 to {MaxDrainSeconds}, or nothing"
        | ("ready" | "maint"), _ -> Error "a deadline goes only with drain"
        | other, _ -> Error $"'{other}' is not an action: use ready, drain or maint"

    /// The admin state in words, for logs and the page: `READY`, `DRAIN`, `DRAIN until 2024-…Z`, `MAINT`.
    [<CompiledName("Describe")>]
    let describe (admin: AdminState) : string =
        match admin with
        | AdminState.Ready -> "READY"
        | AdminState.Maint -> "MAINT"
        | AdminState.Drain None -> "DRAIN"
        | AdminState.Drain(Some d) -> "DRAIN until " + d.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)
