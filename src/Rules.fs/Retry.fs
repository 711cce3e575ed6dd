namespace Lb.Rules

/// How an attempt to forward a request to a server failed, as the shell observed it.
[<RequireQualifiedAccess>]
type FailureKind =
    /// No connection to the server: nothing of the request was sent.
    | ConnectFailed
    /// The connection failed after the request started going out (reset, protocol error, no response):
    /// the server may have received and processed it.
    | RequestFailed
    /// `timeout_server` passed while waiting for the response.
    | TimedOut

/// What the shell does after a failed attempt.
type RetryDecision =
    /// Try the same server again (no `redispatch`).
    | RetrySameServer
    /// Try another usable server, and give the client a new persistence cookie (HAProxy `option redispatch`).
    | RetryOtherServer
    /// Stop and answer the client with this status and its error page.
    | GiveUp of status: int

/// HAProxy's `retries` and `option redispatch`, with RFC 9110's rule on replaying requests.
[<RequireQualifiedAccess>]
module Retry =

    /// RFC 9110 §9.2.2: the idempotent methods, whose repetition has the same intended effect as one request.
    /// Method names are case-sensitive (RFC 9110 §9.1): `get` is not GET and is not replayed.
    let private idempotent = set [ "GET"; "HEAD"; "OPTIONS"; "TRACE"; "PUT"; "DELETE" ]

    /// Whether a request with this method may be sent again after it may have reached the server.
    [<CompiledName("IsIdempotent")>]
    let isIdempotent (method: string) : bool = idempotent.Contains method

    /// The decision after a failed attempt. `failuresSoFar` counts the attempts that failed, this one included
    /// (1 after the first; lower values count as 1); `retries` is the config's (negative counts as 0).
    /// - TimedOut → GiveUp 504 (RFC 9110 §15.6.5 Gateway Timeout): the server may still be working on it, a
    ///   replay would run it twice, and a retry adds `timeout_server` to the client's wait. With
    ///   `retryOnTimeout` (HAProxy `retry-on response-timeout`) it is treated as RequestFailed below, and still
    ///   answers 504 when it is not replayed.
    /// - more failures than `retries` → GiveUp 502 (RFC 9110 §15.6.3 Bad Gateway), or 504 after a timeout. 503
    ///   stays the shell's answer when no server is usable at all.
    /// - ConnectFailed → retry: nothing was sent, so any method and any body may go again.
    /// - RequestFailed → retry only a request without body whose method is idempotent (RFC 9110 §9.2.2: a
    ///   proxy "SHOULD NOT automatically retry a request with a non-idempotent method"); a request with a body
    ///   is never replayed, its body has been consumed. Otherwise GiveUp 502.
    /// A retry goes to another server with `redispatch` (RetryOtherServer), else to the same (RetrySameServer).
    [<CompiledName("Decide")>]
    let decide
        (failuresSoFar: int,
         retries: int,
         redispatch: bool,
         retryOnTimeout: bool,
         method: string,
         hasBody: bool,
         kind: FailureKind)
        : RetryDecision =
        let again = if redispatch then RetryOtherServer else RetrySameServer
        let failed = if kind = FailureKind.TimedOut then GiveUp 504 else GiveUp 502
        match kind with
        | FailureKind.TimedOut when not retryOnTimeout -> failed
        | _ when max 1 failuresSoFar > max 0 retries -> failed
        | FailureKind.ConnectFailed -> again
        | _ when not hasBody && isIdempotent method -> again
        | _ -> failed
