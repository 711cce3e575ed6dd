namespace Lb.Rules

open System

/// HAProxy's `rise` and `fall` of a health check, validated (both at least 1).
type HealthThresholds =
    private
        { rise: int
          fall: int }

    /// Consecutive successful checks that bring a down server up.
    member t.Rise = t.rise
    /// Consecutive failed checks that bring an up server down.
    member t.Fall = t.fall

/// The check state of one server: HAProxy's single saturating counter `health` in 0 .. rise+fall-1.
/// 0 .. rise-1 is down (the value counts successes so far), rise .. rise+fall-1 is up (the value minus
/// rise counts the failures it can still absorb). One value, so "up but failing" and "down but
/// recovering" need no second flag.
type HealthState =
    private
        { health: int
          thresholds: HealthThresholds }

    /// The counter, 0 .. Rise+Fall-1 (HAProxy's stats show it as the check status).
    member s.Health = s.health
    member s.Thresholds = s.thresholds
    /// Whether the server takes traffic: the counter is at least rise.
    member s.IsUp = s.health >= s.thresholds.rise

/// What a check result changed, for the shell to log and to act on (requeue, redispatch).
[<RequireQualifiedAccess>]
type HealthTransition =
    | WentUp
    | WentDown

/// Which response statuses make a health check pass (HAProxy `http-check expect status`).
type ExpectedStatus =
    private
        { ranges: (int * int) list }

    /// Normalised form, e.g. `200-399,404`, for `lb explain` and the stats page.
    override e.ToString() =
        e.ranges
        |> List.map (fun (lo, hi) -> if lo = hi then string lo else $"{lo}-{hi}")
        |> String.concat ","

/// Pure parts of health checking: the rise/fall state machine, the status test and the check schedule.
/// The shell runs the probes on its timer and feeds results to `step`.
[<RequireQualifiedAccess>]
module Health =

    // ---- Rise and fall --------------------------------------------------------------------------

    /// Validated thresholds. Rejects, listing both problems, rise or fall below 1 (a server that needs 0
    /// checks to change state has no state) and values so large that rise+fall-1 overflows.
    [<CompiledName("Thresholds")>]
    let thresholds (rise: int, fall: int) : Result<HealthThresholds, string list> =
        let limit = Int32.MaxValue / 2

        let errors =
            [ if rise < 1 || rise > limit then
                  yield $"rise {rise} must be between 1 and {limit}"
              if fall < 1 || fall > limit then
                  yield $"fall {fall} must be between 1 and {limit}" ]

        if errors.IsEmpty then Ok { rise = rise; fall = fall } else Error errors

    /// The highest counter value: up with `fall` failures to go.
    let private top (t: HealthThresholds) = t.rise + t.fall - 1

    /// The state of a server before its first check. Up (`startUp`) is HAProxy's default: counter = rise,
    /// the server takes traffic at once and its first failed check takes it down, since there is no
    /// history to absorb it. Down: counter 0, the server needs `rise` successes (HAProxy `init-state fully-down`).
    [<CompiledName("Initial")>]
    let initial (thresholds: HealthThresholds, startUp: bool) : HealthState =
        { health = (if startUp then thresholds.rise else 0); thresholds = thresholds }

    /// Whether the server takes traffic.
    [<CompiledName("IsUp")>]
    let isUp (state: HealthState) : bool = state.IsUp

    /// One check result, as HAProxy's process_chk does it:
    /// - success below rise counts up; reaching rise is WentUp; any success at or above rise restores the
    ///   counter to rise+fall-1 ("OK now"), so going down takes `fall` consecutive failures;
    /// - failure above rise counts down ("still good"); a failure at rise is WentDown and resets to 0, as
    ///   does any failure while down, so coming up takes `rise` consecutive successes.
    [<CompiledName("Step")>]
    let step (state: HealthState, success: bool) : HealthState * HealthTransition option =
        let t = state.thresholds
        let at health = { state with health = health }

        if success then
            if state.health >= t.rise then at (top t), None
            elif state.health + 1 = t.rise then at (top t), Some HealthTransition.WentUp
            else at (state.health + 1), None
        elif state.health > t.rise then
            at (state.health - 1), None
        elif state.health = t.rise then
            at 0, Some HealthTransition.WentDown
        else
            at 0, None

    /// A server's state under new thresholds after a reload: up stays up and down stays down, and the
    /// progress made (successes towards rise, failures it can still absorb) is kept as far as the new
    /// thresholds allow. Same thresholds: the state unchanged.
    [<CompiledName("Rethreshold")>]
    let rethreshold (state: HealthState, thresholds: HealthThresholds) : HealthState =
        let old = state.thresholds
        let health =
            if state.health >= old.rise then thresholds.rise + min (state.health - old.rise) (thresholds.fall - 1)
            else min state.health (thresholds.rise - 1)
        { health = health; thresholds = thresholds }

    // ---- Expected status ------------------------------------------------------------------------

    /// The default: any 2xx or 3xx, as HAProxy's `option httpchk` accepts.
    [<CompiledName("DefaultExpected")>]
    let defaultExpected: ExpectedStatus = { ranges = [ 200, 399 ] }

    let private parseItem (item: string) : Result<int * int, string> =
        let code (s: string) =
            match Int32.TryParse(s.Trim(), Globalization.NumberStyles.None, Globalization.CultureInfo.InvariantCulture) with
            | true, n when n >= 100 && n <= 599 -> Some n
            | _ -> None

        let text = item.Trim()

        match text.Split '-' with
        | [| one |] when one.Length = 3 && Char.IsAsciiDigit one.[0] && one.Substring(1).ToLowerInvariant() = "xx" ->
            let cls = int one.[0] - int '0'
            if cls >= 1 && cls <= 5 then Ok(cls * 100, cls * 100 + 99)
            else Error($"status class \"{text}\" must be 1xx to 5xx")
        | [| one |] ->
            match code one with
            | Some n -> Ok(n, n)
            | None -> Error($"\"{text}\" is not a status code from 100 to 599, a range like 200-399 or a class like 2xx")
        | [| lo; hi |] ->
            match code lo, code hi with
            | Some l, Some h when l <= h -> Ok(l, h)
            | Some l, Some h -> Error($"status range {l}-{h} runs backwards")
            | _ -> Error($"status range \"{text}\" needs two codes from 100 to 599")
        | _ -> Error($"\"{text}\" is not a status code, range or class")

    /// Parses an expected-status spec: comma-separated codes (`404`), inclusive ranges (`200-399`) and
    /// classes (`2xx`), spaces allowed around items. Rejects, listing every bad item, anything else, codes
    /// outside 100-599, backwards ranges, and an empty spec.
    [<CompiledName("ParseExpected")>]
    let parseExpected (spec: string) : Result<ExpectedStatus, string list> =
        if String.IsNullOrWhiteSpace spec then
            Error [ "the expected status list is empty; use e.g. 200-399" ]
        else
            let results = spec.Split ',' |> Array.map parseItem |> List.ofArray
            let errors = results |> List.choose (function Error e -> Some e | Ok _ -> None)
            if errors.IsEmpty then Ok { ranges = results |> List.choose (function Ok r -> Some r | Error _ -> None) }
            else Error errors

    /// Whether a check response with `status` passes.
    [<CompiledName("IsExpectedStatus")>]
    let isExpectedStatus (expected: ExpectedStatus, status: int) : bool =
        expected.ranges |> List.exists (fun (lo, hi) -> status >= lo && status <= hi)

    // ---- Schedule -------------------------------------------------------------------------------

    /// HAProxy's upper bound for `spread-checks` (percent).
    [<Literal>]
    let MaxSpread = 50

    /// The delay before a server's next check: `interval` moved by up to ±`spreadPercent` % so the checks
    /// of many servers drift apart instead of firing together (HAProxy `spread-checks`, 0..50; the seed
    /// uses 5). Same formula as HAProxy's process_chk: jitter = interval × spread / 100, delay =
    /// interval + jitter − 2 × jitter × `randomUnit`, so the delay lies in (interval − jitter,
    /// interval + jitter]. `randomUnit` is a uniform draw in [0, 1); values outside are clamped, and so is
    /// spread to 0..50. A negative interval counts as zero.
    [<CompiledName("NextCheckDelay")>]
    let nextCheckDelay (interval: TimeSpan, spreadPercent: int, randomUnit: float) : TimeSpan =
        let ticks = max 0L interval.Ticks
        let spread = int64 (Math.Clamp(spreadPercent, 0, MaxSpread))
        let jitter = ticks * spread / 100L
        let unit = if Double.IsNaN randomUnit then 0.0 else Math.Clamp(randomUnit, 0.0, 1.0)
        // Below 2 × jitter even when rounding pushes the product up: the lower bound stays exclusive.
        let offset = min (int64 (float (2L * jitter) * unit)) (max 0L (2L * jitter - 1L))
        TimeSpan.FromTicks(ticks + jitter - offset)
