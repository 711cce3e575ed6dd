namespace Lb.Rules

open System

/// What lb does with the body of a request it forwards, decided before a byte of the body is read.
[<RequireQualifiedAccess>]
type BodyVerdict =
    /// Stream the body to the backend, at most `limit` bytes: the shell sets the limit on the request (Kestrel's
    /// `IHttpMaxRequestBodySizeFeature`), which cuts a body of undeclared length (chunked, HTTP/2) past it with 413.
    | Stream of limit: int64
    /// Answer 413 at once, forwarding nothing: the declared length (Content-Length) is over `limit`.
    | TooLarge of limit: int64 * reason: string

/// Request size limits: Apache's `LimitRequestBody` per app, RFC 9110 §15.5.14 (413 Content Too Large).
[<RequireQualifiedAccess>]
module RequestLimits =

    /// The body limit of a request routed to `app`: the app's `max_request_body`, else `[defaults] max_request_body`.
    [<CompiledName("BodyLimit")>]
    let bodyLimit (defaults: DefaultsConfig, app: AppConfig) : int64 =
        defaultArg app.MaxRequestBody defaults.MaxRequestBody

    /// The verdict on the body of a request routed to `app`. `declaredLength` is its Content-Length, null when it has
    /// none (no body, or a chunked or HTTP/2 body of unknown length). A declared length over the limit is refused
    /// before anything is forwarded (RFC 9110 §15.5.14); any other body streams, bounded by the limit.
    [<CompiledName("Body")>]
    let body (defaults: DefaultsConfig, app: AppConfig, declaredLength: Nullable<int64>) : BodyVerdict =
        let limit = bodyLimit (defaults, app)
        if declaredLength.HasValue && declaredLength.Value > limit then
            BodyVerdict.TooLarge(limit, $"the request body is larger than {app.Name} accepts (max_request_body {ConfigReading.formatSize limit})")
        else
            BodyVerdict.Stream limit

    /// `lb explain`'s line: the limit that applies to the app's requests and where it is set.
    let describe (defaults: DefaultsConfig, app: AppConfig) : string =
        let source = if app.MaxRequestBody.IsSome then $"[apps.{app.Name}]" else "[defaults]"
        $"  request body: at most {ConfigReading.formatSize (bodyLimit (defaults, app))} ({source} max_request_body), streamed; larger → 413"
