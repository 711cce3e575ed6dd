namespace Lb.Rules

open ConfigReading

/// `[defaults]`: HAProxy's defaults section: retries, timeouts, maxconn. Names and defaults: `Keywords.Defaults`.
[<RequireQualifiedAccess>]
module DefaultsSection =
    module K = Keywords.Defaults

    let defaultDefaults =
        { Retries = K.retries.Default
          Redispatch = K.redispatch.Default
          TimeoutConnect = K.timeoutConnect.Default
          TimeoutClient = K.timeoutClient.Default
          TimeoutServer = K.timeoutServer.Default
          MaxConn = K.maxConn.Default
          TimeoutQueue = K.timeoutQueue.Default
          RetryOnTimeout = K.retryOnTimeout.Default
          TimeoutShutdown = K.timeoutShutdown.Default
          EncodedSlashes = K.encodedSlashes.Default
          MaxRequestBody = K.maxRequestBody.Default
          MaxRequestHeaders = K.maxRequestHeaders.Default }

    /// Upper bound of every `maxconn`: far above what one process serves, low enough to catch a typo.
    [<Literal>]
    let MaxConnLimit = 1_000_000

    /// `[defaults] retries`: HAProxy `retries`, connection attempts after the first (0..100, default 3).
    let parseRetries errors (d: Section) = intInRange errors d K.retries.Name 0 100 K.retries.Default

    /// `[defaults] redispatch`: HAProxy `option redispatch`, a retry may pick another server (default true).
    let parseRedispatch errors (d: Section) = optBool errors d K.redispatch.Name |> Option.defaultValue K.redispatch.Default

    /// `[defaults] timeout_connect`: HAProxy `contimeout` (default 5s). Rejects "0s", as every timeout.
    let parseTimeoutConnect errors (d: Section) = duration errors d K.timeoutConnect.Name K.timeoutConnect.Default

    /// `[defaults] timeout_client`: HAProxy `clitimeout` (default 50s).
    let parseTimeoutClient errors (d: Section) = duration errors d K.timeoutClient.Name K.timeoutClient.Default

    /// `[defaults] timeout_server`: HAProxy `srvtimeout` (default 50s).
    let parseTimeoutServer errors (d: Section) = duration errors d K.timeoutServer.Name K.timeoutServer.Default

    /// `[defaults] maxconn`: HAProxy global `maxconn`, requests in flight across lb (1..1000000, default 2000).
    let parseMaxConn errors (d: Section) = intInRange errors d K.maxConn.Name 1 MaxConnLimit K.maxConn.Default

    /// `[defaults] timeout_queue`: HAProxy `timeout queue`, the longest wait for a slot before 503 (default 5s).
    let parseTimeoutQueue errors (d: Section) = duration errors d K.timeoutQueue.Name K.timeoutQueue.Default

    /// `[defaults] retry_on_timeout`: HAProxy `retry-on response-timeout` for idempotent requests without body
    /// (default false: a timed-out request gets 504 and is never replayed).
    let parseRetryOnTimeout errors (d: Section) =
        optBool errors d K.retryOnTimeout.Name |> Option.defaultValue K.retryOnTimeout.Default

    /// `[defaults] timeout_shutdown`: HAProxy `hard-stop-after`, the longest a stopping lb waits for in-flight
    /// requests before it closes their connections (default 30s).
    let parseTimeoutShutdown errors (d: Section) = duration errors d K.timeoutShutdown.Name K.timeoutShutdown.Default

    /// `[defaults] encoded_slashes`: "reject" (default, Apache `AllowEncodedSlashes Off`: 404), "keep" (`NoDecode`)
    /// or "decode" (`On`); rejects any other word or a non-string.
    let parseEncodedSlashes errors (d: Section) =
        match Keyword.optWord errors d K.encodedSlashes with
        | None -> K.encodedSlashes.Default
        | Some(Ok mode) -> mode
        | Some(Error(other, at)) ->
            addError errors (keyword d K.encodedSlashes.Name) at $"'{other}' is not a mode" "use \"reject\" (Apache AllowEncodedSlashes Off), \"keep\" (NoDecode) or \"decode\" (On)"
            K.encodedSlashes.Default

    /// The largest `max_request_body`: 1TB, far above any upload; a larger value is taken for a slip of unit.
    let MaxRequestBodyLimit = 1L <<< 40

    /// `max_request_body` in `[defaults]` or `[apps.NAME]`: the largest request body, `"1B"` to `"1TB"`. Rejects
    /// `"0B"`: Apache's `LimitRequestBody 0` means unlimited, lb has no unlimited, and 0 refusing every body would
    /// be the opposite of what a migrated config meant.
    let requestBodySize errors (section: Section) (fallback: int64) =
        match tryGet section K.maxRequestBody.Name with
        | Some(_, _, TString(text, at)) when parseSize text = Some 0L ->
            addError errors (keyword section K.maxRequestBody.Name) at "0 is not a limit" "lb has no unlimited (Apache's 0): write the largest body to accept, like \"10GB\""
            fallback
        | _ -> size errors section K.maxRequestBody.Name 1L MaxRequestBodyLimit fallback

    /// `[defaults] max_request_body`: the largest request body of an app that sets none (default 1GB, as Apache's
    /// `LimitRequestBody`). Over it: 413 (`RequestLimits.body`).
    let parseMaxRequestBody errors (d: Section) = requestBodySize errors d K.maxRequestBody.Default

    /// `[defaults] max_request_headers`: the most bytes of request header fields, names and values (Kestrel's
    /// `MaxRequestHeadersTotalSize`), `"1KB"` to `"1MB"`, default `"32KB"`: what Kestrel allowed before, and twice
    /// HAProxy's `tune.bufsize` (16KB, the whole request head). Over it Kestrel answers 431 (RFC 6585 §5).
    let parseMaxRequestHeaders errors (d: Section) =
        size errors d K.maxRequestHeaders.Name (1L <<< 10) (1L <<< 20) K.maxRequestHeaders.Default

    /// `[defaults]`: HAProxy's defaults section (retries, redispatch, contimeout/clitimeout/srvtimeout, maxconn,
    /// timeout queue, retry-on response-timeout) and global hard-stop-after.
    let parse (root: Section) : DefaultsConfig * ConfigError list =
        ownErrors <| fun errors ->
        match optTable errors root Keywords.Defaults.Table with
        | Some d ->
            rejectUnknownKeys errors d K.names
            { Retries = parseRetries errors d
              Redispatch = parseRedispatch errors d
              TimeoutConnect = parseTimeoutConnect errors d
              TimeoutClient = parseTimeoutClient errors d
              TimeoutServer = parseTimeoutServer errors d
              MaxConn = parseMaxConn errors d
              TimeoutQueue = parseTimeoutQueue errors d
              RetryOnTimeout = parseRetryOnTimeout errors d
              TimeoutShutdown = parseTimeoutShutdown errors d
              EncodedSlashes = parseEncodedSlashes errors d
              MaxRequestBody = parseMaxRequestBody errors d
              MaxRequestHeaders = parseMaxRequestHeaders errors d }
        | None -> defaultDefaults
