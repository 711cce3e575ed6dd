namespace Lb.Rules

open System
open ConfigReading

/// `[health]` and an app's `health = { ... }`: the health checks.
[<RequireQualifiedAccess>]
module HealthSection =
    module K = Keywords.Health

    /// The version in the default health-check User-Agent.
    [<Literal>]
    let Version = Keywords.Version

    /// `lb-healthcheck/<version>`: backends can leave checks out of their logs, as the seed's backends do.
    [<Literal>]
    let DefaultUserAgent = Keywords.DefaultUserAgent

    let private defaultThresholds =
        match Health.thresholds (K.rise.Default, K.fall.Default) with
        | Ok t -> t
        | Error e -> failwith ("default thresholds: " + String.concat "; " e)

    /// The check timeout when none is written: 2s, capped at the interval.
    let DefaultHealthTimeout = K.timeout.Default

    let defaultHealth =
        { Enabled = K.enabled.Default
          Method = K.method.Default
          Path = K.path.Default
          Host = None
          Expected = K.expect.Default
          Interval = K.interval.Default
          Timeout = DefaultHealthTimeout
          Thresholds = defaultThresholds
          Spread = K.spread.Default
          UserAgent = K.userAgent.Default }

    /// `health.enabled`: false runs no checks and counts every server up (default true).
    let parseHealthEnabled errors (section: Section) (fallback: bool) : bool =
        optBool errors section K.enabled.Name |> Option.defaultValue fallback

    /// `health.method`: the check's request method, an RFC 9110 §9.1 token (case-sensitive), default GET.
    let parseHealthMethod errors (section: Section) (fallback: string) : string =
        match optString errors section K.method.Name with
        | Some(m, _) when Token.isToken m -> m
        | Some(m, at) ->
            addError errors (keyword section K.method.Name) at $"'{m}' is not an HTTP method" "like \"GET\", \"HEAD\" or \"OPTIONS\""
            fallback
        | None -> fallback

    /// `health.path`: the check's request target in origin-form (RFC 9112 §3.2.1): starts with '/', visible
    /// ASCII (percent-encode the rest), no fragment. Default `/`.
    let parseHealthPath errors (section: Section) (fallback: string) : string =
        match optString errors section K.path.Name with
        | Some(p, _) when p.StartsWith "/" && p |> Seq.forall (fun c -> c > ' ' && c < '\127' && c <> '#') -> p
        | Some(p, at) ->
            addError
                errors
                (keyword section K.path.Name)
                at
                $"'{p}' is not a request path"
                "start it with '/', like \"/ping\"; percent-encode spaces and non-ASCII"
            fallback
        | None -> fallback

    /// `health.host`: the Host header of a check (RFC 9110 §7.2 `host[:port]`); absent sends the server's address.
    let parseHealthHost errors (section: Section) (fallback: string option) : string option =
        let valid (h: string) =
            h <> "" && h.Length <= 255 && h |> Seq.forall (fun c -> Char.IsAsciiLetterOrDigit c || "-._~:[]".IndexOf c >= 0)
        match optString errors section K.host.Name with
        | Some(h, _) when valid h -> Some h
        | Some(h, at) ->
            addError errors (keyword section K.host.Name) at $"'{h}' is not a host name" "like \"app1.internal\" or \"app1.internal:8080\""
            fallback
        | None -> fallback

    /// `health.expect`: statuses that pass (`Health.parseExpected`: `"200-399"`, `"2xx,404"`), default 200-399.
    let parseHealthExpect errors (section: Section) (fallback: ExpectedStatus) : ExpectedStatus =
        match optString errors section K.expect.Name with
        | Some(spec, at) ->
            match Health.parseExpected spec with
            | Ok expected -> expected
            | Error problems ->
                for problem in problems do
                    addError errors (keyword section K.expect.Name) at problem "codes, ranges and classes separated by commas, like \"200-399\" or \"2xx,404\""
                fallback
        | None -> fallback

    /// `health.interval`: HAProxy `inter`, the time between two checks of a server (default 10s).
    let parseHealthInterval errors (section: Section) (fallback: TimeSpan) = duration errors section K.interval.Name fallback

    /// `health.timeout`: HAProxy `timeout check`, the longest a check may take (default 2s). Rejects a timeout
    /// longer than the interval written with it: the check would still run when the next is due. A timeout not
    /// written in this table — inherited from `[health]` (`inherited`) or the default — is capped at this
    /// table's interval instead, so `health = { interval = "1s" }` under a global `timeout = "2s"` (issue 3's
    /// example) means checks every second that give up after one (HAProxy likewise falls back to `inter`).
    let parseHealthTimeout errors (section: Section) (inherited: TimeSpan option) (interval: TimeSpan) : TimeSpan =
        match tryGet section K.timeout.Name with
        | Some(_, at, _) ->
            let timeout = duration errors section K.timeout.Name DefaultHealthTimeout
            if timeout > interval then
                addError
                    errors
                    (keyword section K.timeout.Name)
                    at
                    $"timeout {formatDuration timeout} is longer than interval {formatDuration interval}"
                    "a check must give up before the next one is due: make timeout at most the interval"
            timeout
        | None -> min (inherited |> Option.defaultValue DefaultHealthTimeout) interval

    /// Upper bound of `rise` and `fall`: beyond it a state change would take longer than anyone waits.
    [<Literal>]
    let MaxRiseFall = 1000

    /// `health.rise` and `health.fall` (default 2 each): consecutive successes to go up, failures to go down.
    /// Rejects values outside 1..1000 (a server that needs 0 checks to change state has no state).
    let parseHealthThresholds errors (section: Section) (fallback: HealthThresholds) : HealthThresholds =
        let rise = intInRange errors section K.rise.Name 1 MaxRiseFall fallback.Rise
        let fall = intInRange errors section K.fall.Name 1 MaxRiseFall fallback.Fall
        match Health.thresholds (rise, fall) with
        | Ok t -> t
        | Error _ -> fallback

    /// `health.spread`: percent of jitter on the interval, 0..50 (HAProxy `spread-checks`), default 5.
    let parseHealthSpread errors (section: Section) (fallback: int) : int =
        intInRange errors section K.spread.Name 0 Health.MaxSpread fallback

    /// `health.user_agent`: the checks' User-Agent, default `lb-healthcheck/1.0`. Rejects an empty value,
    /// control characters (RFC 9110 §5.5: a field value holds no CR, LF or NUL) and non-ASCII.
    let parseHealthUserAgent errors (section: Section) (fallback: string) : string =
        match optString errors section K.userAgent.Name with
        | Some(ua, _) when ua.Trim() = ua && ua <> "" && ua |> Seq.forall (fun c -> c >= ' ' && c < '\127') -> ua
        | Some(ua, at) ->
            addError errors (keyword section K.userAgent.Name) at $"'{ua}' cannot be a User-Agent" "printable ASCII without leading or trailing spaces"
            fallback
        | None -> fallback

    /// `[health]` or an app's `health = { ... }`: each key absent here keeps the inherited value. `inherited` is
    /// the parent's settings and the timeout written there, if any (`parseHealthTimeout` caps an inherited or
    /// default timeout at the interval); the result carries the same for children.
    let parseHealth errors (section: Section) (inherited: HealthCheckConfig * TimeSpan option) : HealthCheckConfig * TimeSpan option =
        let fallback, inheritedTimeout = inherited
        rejectUnknownKeys errors section K.names
        let interval = parseHealthInterval errors section fallback.Interval
        let timeout = parseHealthTimeout errors section inheritedTimeout interval
        let written = if (tryGet section K.timeout.Name).IsSome then Some timeout else inheritedTimeout
        let health =
            { Enabled = parseHealthEnabled errors section fallback.Enabled
              Method = parseHealthMethod errors section fallback.Method
              Path = parseHealthPath errors section fallback.Path
              Host = parseHealthHost errors section fallback.Host
              Expected = parseHealthExpect errors section fallback.Expected
              Interval = interval
              Timeout = timeout
              Thresholds = parseHealthThresholds errors section fallback.Thresholds
              Spread = parseHealthSpread errors section fallback.Spread
              UserAgent = parseHealthUserAgent errors section fallback.UserAgent }
        health, written

    /// The global `[health]`: every app inherits it (the defaults when the section is absent).
    let parseGlobal (root: Section) : (HealthCheckConfig * TimeSpan option) * ConfigError list =
        ownErrors <| fun errors ->
        parseHealth errors (optTable errors root Keywords.Health.Table |> Option.defaultValue (absent Keywords.Health.Table root.Table.At)) (defaultHealth, None)
