namespace Lb.Rules

open System
open ConfigReading

/// `[defaults]`: HAProxy's defaults section: retries, timeouts, maxconn.
[<RequireQualifiedAccess>]
module DefaultsSection =
    let defaultDefaults =
        { Retries = 3
          Redispatch = true
          TimeoutConnect = TimeSpan.FromSeconds 5.0
          TimeoutClient = TimeSpan.FromSeconds 50.0
          TimeoutServer = TimeSpan.FromSeconds 50.0
          MaxConn = 2000
          TimeoutQueue = TimeSpan.FromSeconds 5.0
          RetryOnTimeout = false
          TimeoutShutdown = TimeSpan.FromSeconds 30.0 }

    /// Upper bound of every `maxconn`: far above what one process serves, low enough to catch a typo.
    [<Literal>]
    let MaxConnLimit = 1_000_000

    /// `[defaults] maxconn`: HAProxy global `maxconn`, requests in flight across lb (1..1000000, default 2000).
    let parseMaxConn errors (d: Section) = intInRange errors d "maxconn" 1 MaxConnLimit defaultDefaults.MaxConn

    /// `[defaults] timeout_queue`: HAProxy `timeout queue`, the longest wait for a slot before 503 (default 5s).
    let parseTimeoutQueue errors (d: Section) = duration errors d "timeout_queue" defaultDefaults.TimeoutQueue

    /// `[defaults] retry_on_timeout`: HAProxy `retry-on response-timeout` for idempotent requests without body
    /// (default false: a timed-out request gets 504 and is never replayed).
    let parseRetryOnTimeout errors (d: Section) =
        optBool errors d "retry_on_timeout" |> Option.defaultValue defaultDefaults.RetryOnTimeout

    /// `[defaults] timeout_shutdown`: HAProxy `hard-stop-after`, the longest a stopping lb waits for in-flight
    /// requests before it closes their connections (default 30s).
    let parseTimeoutShutdown errors (d: Section) = duration errors d "timeout_shutdown" defaultDefaults.TimeoutShutdown

    /// `[defaults]`: HAProxy's defaults section (retries, redispatch, contimeout/clitimeout/srvtimeout, maxconn,
    /// timeout queue, retry-on response-timeout) and global hard-stop-after.
    let parse (root: Section) : DefaultsConfig * ConfigError list =
        ownErrors <| fun errors ->
        match optTable errors root "defaults" with
        | Some d ->
            rejectUnknownKeys
                errors
                d
                [ "retries"
                  "redispatch"
                  "timeout_connect"
                  "timeout_client"
                  "timeout_server"
                  "maxconn"
                  "timeout_queue"
                  "retry_on_timeout"
                  "timeout_shutdown" ]
            { Retries = intInRange errors d "retries" 0 100 defaultDefaults.Retries
              Redispatch = optBool errors d "redispatch" |> Option.defaultValue defaultDefaults.Redispatch
              TimeoutConnect = duration errors d "timeout_connect" defaultDefaults.TimeoutConnect
              TimeoutClient = duration errors d "timeout_client" defaultDefaults.TimeoutClient
              TimeoutServer = duration errors d "timeout_server" defaultDefaults.TimeoutServer
              MaxConn = parseMaxConn errors d
              TimeoutQueue = parseTimeoutQueue errors d
              RetryOnTimeout = parseRetryOnTimeout errors d
              TimeoutShutdown = parseTimeoutShutdown errors d }
        | None -> defaultDefaults
