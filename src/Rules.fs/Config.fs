namespace Lb.Rules

open System
open System.Globalization
open System.Net

/// Reading typed values out of a `TomlTable`, collecting every error instead of stopping at the first.
/// Each reader records an error and returns a fallback, so validation can go on and report everything.
module ConfigReading =
    type Errors = ResizeArray<ConfigError>

    /// A table with the dotted path it was found at, so errors can name `apps.app1.servers[2].address`.
    type Section = { Path: string; Table: TomlTable }

    let keyword (section: Section) key =
        if section.Path = "" then key else section.Path + "." + key

    let addError (errors: Errors) kw (at: Position) message hint =
        errors.Add
            { Keyword = kw
              Line = at.Line
              Column = at.Column
              Message = message
              Hint = hint }

    let tryGet (section: Section) key =
        section.Table.Entries |> List.tryFind (fun (name, _, _) -> name = key)

    /// Levenshtein distance, for "did you mean" hints on misspelt keywords.
    let private distance (a: string) (b: string) =
        let d = Array2D.init (a.Length + 1) (b.Length + 1) (fun i j -> if i = 0 then j elif j = 0 then i else 0)
        for i in 1 .. a.Length do
            for j in 1 .. b.Length do
                let cost = if a[i - 1] = b[j - 1] then 0 else 1
                d[i, j] <- min (min (d[i - 1, j] + 1) (d[i, j - 1] + 1)) (d[i - 1, j - 1] + cost)
        d[a.Length, b.Length]

    let suggestion (known: string list) (unknown: string) =
        known
        |> List.map (fun k -> k, distance k unknown)
        |> List.filter (fun (_, d) -> d <= 3)
        |> List.sortBy snd
        |> List.tryHead
        |> Option.map (fun (k, _) -> $"did you mean '{k}'?")
        |> Option.defaultValue ("known keys here: " + String.Join(", ", known))

    /// Every key of a section must be one lb knows: a typo must not silently fall back to a default.
    let rejectUnknownKeys errors (section: Section) (known: string list) =
        for name, at, _ in section.Table.Entries do
            if not (List.contains name known) then
                addError errors (keyword section name) at "unknown key" (suggestion known name)

    let private wrongType errors kw node expected =
        let hint =
            match expected with
            | "a string" -> "put the value in double quotes"
            | "an integer" -> "write a whole number without quotes"
            | "true or false" -> "write true or false without quotes"
            | _ -> "write it as a [section] or an inline { key = value } table"
        addError errors kw (TomlNode.position node) $"expected {expected}, found {TomlNode.kindName node}" hint

    let optString errors section key : (string * Position) option =
        match tryGet section key with
        | Some(_, _, TString(s, at)) -> Some(s, at)
        | Some(_, _, node) ->
            wrongType errors (keyword section key) node "a string"
            None
        | None -> None

    let optInt errors section key : (int64 * Position) option =
        match tryGet section key with
        | Some(_, _, TInteger(i, at)) -> Some(i, at)
        | Some(_, _, node) ->
            wrongType errors (keyword section key) node "an integer"
            None
        | None -> None

    let optBool errors section key : bool option =
        match tryGet section key with
        | Some(_, _, TBoolean(b, _)) -> Some b
        | Some(_, _, node) ->
            wrongType errors (keyword section key) node "true or false"
            None
        | None -> None

    let optTable errors section key : Section option =
        match tryGet section key with
        | Some(_, _, TTable t) -> Some { Path = keyword section key; Table = t }
        | Some(_, _, node) ->
            wrongType errors (keyword section key) node "a table"
            None
        | None -> None

    /// An integer within bounds, or the default when absent.
    let intInRange errors section key (low: int) (high: int) (fallback: int) =
        match optInt errors section key with
        | Some(i, _) when i >= int64 low && i <= int64 high -> int i
        | Some(i, at) ->
            addError errors (keyword section key) at $"{i} is out of range" $"use a value from {low} to {high}"
            fallback
        | None -> fallback

    let private durationUnits =
        [ "ms", 1.0; "s", 1000.0; "m", 60_000.0; "h", 3_600_000.0 ]

    /// `"250ms"`, `"5s"`, `"1.5m"`, `"2h"`. A bare number is refused: HAProxy reads it as milliseconds,
    /// keepalived as seconds, and that ambiguity is a classic outage.
    let parseDuration (text: string) : TimeSpan option =
        let text = text.Trim()
        durationUnits
        |> List.sortByDescending (fun (u, _) -> u.Length)
        |> List.tryPick (fun (unitName, ms) ->
            if text.EndsWith unitName && text.Length > unitName.Length then
                let number = text.Substring(0, text.Length - unitName.Length)
                match Double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture) with
                | true, v when Char.IsDigit number[number.Length - 1] -> Some(TimeSpan.FromMilliseconds(v * ms))
                | _ -> None
            else
                None)

    /// A duration as config writes it: `"10s"`, `"250ms"`, `"1.5s"` (round trips through `parseDuration`).
    let formatDuration (d: TimeSpan) =
        let ms = d.TotalMilliseconds
        if ms >= 1000.0 && ms % 1000.0 = 0.0 then (ms / 1000.0).ToString("R", CultureInfo.InvariantCulture) + "s"
        else ms.ToString("R", CultureInfo.InvariantCulture) + "ms"

    let duration errors section key (fallback: TimeSpan) =
        match tryGet section key with
        | Some(_, _, TString(s, at)) ->
            match parseDuration s with
            | Some d when d > TimeSpan.Zero -> d
            | _ ->
                addError errors (keyword section key) at $"'{s}' is not a duration" "write it like \"5s\", \"250ms\" or \"1m\""
                fallback
        | Some(_, _, node) ->
            addError
                errors
                (keyword section key)
                (TomlNode.position node)
                $"expected a duration string, found {TomlNode.kindName node}"
                "write it with its unit, like \"5s\" or \"250ms\""
            fallback
        | None -> fallback

    let private sizeUnits =
        [ "B", 1L; "KB", 1L <<< 10; "KiB", 1L <<< 10; "MB", 1L <<< 20; "MiB", 1L <<< 20; "GB", 1L <<< 30; "GiB", 1L <<< 30
          "TB", 1L <<< 40; "TiB", 1L <<< 40 ]

    /// `"256MB"`, `"512KB"`, `"1GiB"`, `"4096B"`: a whole number and a unit; K, M, G and T are powers of 1024 (as
    /// in nginx), with or without the `i`. A bare number is refused, like a bare duration.
    let parseSize (text: string) : int64 option =
        let text = text.Trim()
        let digits = text |> Seq.takeWhile Char.IsAsciiDigit |> Seq.length
        let unitName = text.Substring(digits).Trim()
        match sizeUnits |> List.tryFind (fun (u, _) -> String.Equals(u, unitName, StringComparison.OrdinalIgnoreCase)) with
        | Some(_, multiplier) when digits > 0 && digits <= 12 ->
            let n = Int64.Parse(text.Substring(0, digits), CultureInfo.InvariantCulture)
            if n <= Int64.MaxValue / multiplier then Some(n * multiplier) else None
        | _ -> None

    /// A size as config writes it (round trips through `parseSize`): the largest unit that divides it.
    let formatSize (bytes: int64) =
        [ "TB", 1L <<< 40; "GB", 1L <<< 30; "MB", 1L <<< 20; "KB", 1L <<< 10 ]
        |> List.tryFind (fun (_, m) -> bytes >= m && bytes % m = 0L)
        |> Option.map (fun (u, m) -> $"{bytes / m}{u}")
        |> Option.defaultValue $"{bytes}B"

    /// A size within bounds (`parseSize`), or the default when absent.
    let size errors (section: Section) key (low: int64) (high: int64) (fallback: int64) : int64 =
        match optString errors section key with
        | Some(text, at) ->
            match parseSize text with
            | Some n when n >= low && n <= high -> n
            | Some _ ->
                addError errors (keyword section key) at $"'{text}' is out of range" $"use a size from {formatSize low} to {formatSize high}"
                fallback
            | None ->
                addError errors (keyword section key) at $"'{text}' is not a size" "write it with its unit, like \"256MB\", \"512KB\" or \"1GB\""
                fallback
        | None -> fallback

    /// `host:port` or `[v6]:port`; `*:port` listens on every address.
    let parseEndpoint (text: string) : Result<Endpoint, string> =
        let hostPort =
            if text.StartsWith "[" then
                match text.IndexOf "]:" with
                | -1 -> Error "an IPv6 address needs the form [addr]:port"
                | i -> Ok(text.Substring(1, i - 1), text.Substring(i + 2))
            else
                match text.LastIndexOf ':' with
                | -1 -> Error "missing ':port'"
                | i when text.IndexOf ':' <> i -> Error "an IPv6 address must be written in brackets: [addr]:port"
                | i -> Ok(text.Substring(0, i), text.Substring(i + 1))
        let validHost (host: string) =
            host = "*"
            || (match IPAddress.TryParse host with
                | true, _ -> true
                | _ -> Uri.CheckHostName host = UriHostNameType.Dns)
        match hostPort with
        | Error e -> Error e
        | Ok(host, port) ->
            match Int32.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture) with
            | true, p when p >= 0 && p <= 65535 ->
                if validHost host then Ok { Host = host; Port = p } else Error $"'{host}' is not an IP address or host name"
            | _ -> Error $"'{port}' is not a port number (0-65535)"

    let endpoint errors section key : Endpoint option =
        match optString errors section key with
        | Some(text, at) ->
            match parseEndpoint text with
            | Ok e -> Some e
            | Error message -> 
                addError errors (keyword section key) at message "write it like \"127.0.0.1:8443\" or \"[::1]:8443\""
                None
        | None -> None

/// What loading a config may ask of the file system, injected so the loader stays pure.
type ConfigIo =
    { FileExists: string -> bool
      /// Problems with the PEM files as (key, message): "cert", "key" or "chain".
      CheckTls: TlsConfig -> (string * string) list
      /// The text of a file (`[stats] password_file`), or why it cannot be read.
      ReadText: string -> Result<string, string> }

/// Loads and validates the whole configuration from TOML text (Tomlyn), keyword by keyword.
/// Never throws: every mistake comes back as a `ConfigError` with line, column and a hint.
[<RequireQualifiedAccess>]
module Config =
    open ConfigReading

    let private topLevelKeys = [ "node"; "listen"; "tls"; "defaults"; "persistence"; "health"; "errors"; "apps"; "stats"; "log"; "vrrp"; "cache"; "rules" ]

    /// The version in the default health-check User-Agent.
    [<Literal>]
    let Version = "1.0"

    /// `lb-healthcheck/<version>`: backends can leave checks out of their logs, as the seed's backends do.
    [<Literal>]
    let DefaultUserAgent = "lb-healthcheck/" + Version

    /// A section that is absent: every key takes its fallback.
    let private absent path (at: Position) = { Path = path; Table = { Entries = []; At = at } }

    /// `[node] reload_on_change`: reload when the config file or a TLS file changes (default false: SIGHUP only).
    let parseReloadOnChange errors (node: Section) : bool =
        optBool errors node "reload_on_change" |> Option.defaultValue false

    /// The longest `[node] warm_up`: it delays the listeners, and the JIT's work is done well within it.
    let maxWarmUp = TimeSpan.FromSeconds 60.0

    /// `[node] warm_up`: for how long, before its listeners open (and so before VRRP can make it master), lb
    /// drives a private copy of its request path on loopback, so the JIT has optimised that path before the first
    /// real request. "0s" (the default) turns it off.
    let parseWarmUp errors (node: Section) : TimeSpan =
        let refuse at (found: string) =
            addError errors (keyword node "warm_up") at $"{found} is not a warm-up time" "write \"0s\" (off) up to \"60s\", like \"5s\""
            TimeSpan.Zero
        match tryGet node "warm_up" with
        | Some(_, _, TString(s, at)) ->
            match parseDuration s with
            | Some d when d <= maxWarmUp -> d
            | _ -> refuse at $"'{s}'"
        | Some(_, _, other) -> refuse (TomlNode.position other) $"a {TomlNode.kindName other}"
        | None -> TimeSpan.Zero

    /// `[node] name`: this load balancer's name in logs and stats (HAProxy `node lb1`).
    let parseNode errors (root: Section) : NodeConfig =
        match optTable errors root "node" with
        | Some node ->
            rejectUnknownKeys errors node [ "name"; "reload_on_change"; "warm_up" ]
            { Name = optString errors node "name" |> Option.map fst |> Option.defaultValue "lb"
              ReloadOnChange = parseReloadOnChange errors node
              WarmUp = parseWarmUp errors node }
        | None -> { Name = "lb"; ReloadOnChange = false; WarmUp = TimeSpan.Zero }

    /// `[listen] plain_http`: "redirect" (Apache's port-80 vhost) or "proxy" (TLS ends before lb).
    let parsePlainHttpMode errors (listen: Section) =
        match optString errors listen "plain_http" with
        | Some("redirect", _)
        | None -> PlainHttpMode.RedirectToHttps
        | Some("proxy", _) -> PlainHttpMode.Proxy
        | Some(other, at) ->
            addError errors (keyword listen "plain_http") at $"'{other}' is not a mode" "use \"redirect\" or \"proxy\""
            PlainHttpMode.RedirectToHttps

    /// `[listen] redirect_status`: 301, 302 (default, as Apache's `[R]`), 303, 307 or 308.
    let parseRedirectStatus errors (listen: Section) =
        match optInt errors listen "redirect_status" with
        | Some(s, _) when List.contains s [ 301L; 302L; 303L; 307L; 308L ] -> int s
        | Some(s, at) ->
            addError errors (keyword listen "redirect_status") at $"{s} is not a redirect status" "use 301, 302, 303, 307 or 308"
            302
        | None -> 302

    /// `[listen] http`, `https`: the two listeners.
    let parseListen errors (root: Section) : ListenConfig =
        let empty = { Path = "listen"; Table = { Entries = []; At = root.Table.At } }
        let listen = optTable errors root "listen" |> Option.defaultValue empty
        rejectUnknownKeys errors listen [ "http"; "https"; "plain_http"; "redirect_status" ]
        let config =
            { Http = endpoint errors listen "http"
              Https = endpoint errors listen "https"
              PlainHttp = parsePlainHttpMode errors listen
              RedirectStatus = parseRedirectStatus errors listen }
        if config.Http.IsNone && config.Https.IsNone && errors.Count = 0 then
            addError errors "listen" listen.Table.At "no listener is configured" "add https = \"127.0.0.1:8443\" under [listen]"
        match config.Http, config.Https with
        | Some h, Some s when h = s ->
            addError errors "listen.https" listen.Table.At "http and https listen on the same address" "give them different ports"
        | _ -> ()
        config

    /// A path in config is relative to the config file's folder.
    let private resolve (baseDir: string) (path: string) =
        if IO.Path.IsPathRooted path then path else IO.Path.GetFullPath(IO.Path.Combine(baseDir, path))

    let private pemFile errors (section: Section) key baseDir (fileExists: string -> bool) required =
        match optString errors section key with
        | Some(path, at) ->
            let full = resolve baseDir path
            if not (fileExists full) then
                addError errors (keyword section key) at $"file not found: {full}" "paths are relative to the config file"
            Some full
        | None ->
            if required then
                addError errors (keyword section key) section.Table.At "missing" $"add {key} = \"FILE.pem\" under [tls]"
            None

    /// `[tls] cert`, `key`, `chain`: PEM files, as Apache's SSLCertificateFile/KeyFile/ChainFile. Beyond
    /// existence, `checkTls` (injected: it reads the files) says whether they hold a usable certificate and key,
    /// so `lb check` refuses what `lb run` could not load.
    let parseTls errors (root: Section) baseDir (io: ConfigIo) (listen: ListenConfig) : TlsConfig option =
        match optTable errors root "tls" with
        | Some tls ->
            rejectUnknownKeys errors tls [ "cert"; "key"; "chain" ]
            let before = errors.Count
            let cert = pemFile errors tls "cert" baseDir io.FileExists true
            let key = pemFile errors tls "key" baseDir io.FileExists true
            let chain = pemFile errors tls "chain" baseDir io.FileExists false
            match cert, key with
            | Some c, Some k ->
                let config = { Cert = c; Key = k; Chain = chain }
                if errors.Count = before then
                    for name, message in io.CheckTls config do
                        let at = tryGet tls name |> Option.map (fun (_, p, _) -> p) |> Option.defaultValue tls.Table.At
                        addError errors (keyword tls name) at message "give PEM files: a certificate, its private key, and CA certificates in the chain"
                Some config
            | _ -> None
        | None ->
            if listen.Https.IsSome then
                addError errors "tls" root.Table.At "an https listener needs a certificate" "add a [tls] section with cert and key"
            None

    let defaultDefaults =
        { Retries = 3
          Redispatch = true
          TimeoutConnect = TimeSpan.FromSeconds 5.0
          TimeoutClient = TimeSpan.FromSeconds 50.0
          TimeoutServer = TimeSpan.FromSeconds 50.0
          MaxConn = 2000
          TimeoutQueue = TimeSpan.FromSeconds 5.0
          RetryOnTimeout = false
          TimeoutShutdown = TimeSpan.FromSeconds 30.0
          MaxRequestBody = 1L <<< 30
          MaxRequestHeaders = 32L <<< 10 }

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

    /// The largest `max_request_body`: 1TB, far above any upload; a larger value is taken for a slip of unit.
    let MaxRequestBodyLimit = 1L <<< 40

    /// `max_request_body` in `[defaults]` or `[apps.NAME]`: the largest request body, `"1B"` to `"1TB"`. Rejects
    /// `"0B"`: Apache's `LimitRequestBody 0` means unlimited, lb has no unlimited, and 0 refusing every body would
    /// be the opposite of what a migrated config meant.
    let private requestBodySize errors (section: Section) (fallback: int64) =
        match tryGet section "max_request_body" with
        | Some(_, _, TString(text, at)) when ConfigReading.parseSize text = Some 0L ->
            addError errors (keyword section "max_request_body") at "0 is not a limit" "lb has no unlimited (Apache's 0): write the largest body to accept, like \"10GB\""
            fallback
        | _ -> size errors section "max_request_body" 1L MaxRequestBodyLimit fallback

    /// `[defaults] max_request_body`: the largest request body of an app that sets none (default 1GB, as Apache's
    /// `LimitRequestBody`). Over it: 413 (`RequestLimits.body`).
    let parseMaxRequestBody errors (d: Section) = requestBodySize errors d defaultDefaults.MaxRequestBody

    /// `[defaults] max_request_headers`: the most bytes of request header fields, names and values (Kestrel's
    /// `MaxRequestHeadersTotalSize`), `"1KB"` to `"1MB"`, default `"32KB"`: what Kestrel allowed before, and twice
    /// HAProxy's `tune.bufsize` (16KB, the whole request head). Over it Kestrel answers 431 (RFC 6585 §5).
    let parseMaxRequestHeaders errors (d: Section) =
        size errors d "max_request_headers" (1L <<< 10) (1L <<< 20) defaultDefaults.MaxRequestHeaders

    /// `[defaults]`: HAProxy's defaults section (retries, redispatch, contimeout/clitimeout/srvtimeout, maxconn,
    /// timeout queue, retry-on response-timeout) and global hard-stop-after.
    let parseDefaults errors (root: Section) : DefaultsConfig =
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
                  "timeout_shutdown"
                  "max_request_body"
                  "max_request_headers" ]
            { Retries = intInRange errors d "retries" 0 100 defaultDefaults.Retries
              Redispatch = optBool errors d "redispatch" |> Option.defaultValue defaultDefaults.Redispatch
              TimeoutConnect = duration errors d "timeout_connect" defaultDefaults.TimeoutConnect
              TimeoutClient = duration errors d "timeout_client" defaultDefaults.TimeoutClient
              TimeoutServer = duration errors d "timeout_server" defaultDefaults.TimeoutServer
              MaxConn = parseMaxConn errors d
              TimeoutQueue = parseTimeoutQueue errors d
              RetryOnTimeout = parseRetryOnTimeout errors d
              TimeoutShutdown = parseTimeoutShutdown errors d
              MaxRequestBody = parseMaxRequestBody errors d
              MaxRequestHeaders = parseMaxRequestHeaders errors d }
        | None -> defaultDefaults

    // ---- Persistence ------------------------------------------------------------------------------

    let defaultPersistence =
        { Cookie = Some Cookies.DefaultName
          Mode = CookieValueMode.Named
          MoveFirst = false }

    /// `persistence.cookie`: the cookie name (RFC 6265 §4.1.1 token), default `SRVID`; `""` turns persistence
    /// off. Rejects a non-token name and a `__Host-` name: RFC 6265bis §4.1.3.2 requires Path=/ for it, and lb
    /// scopes the cookie to the app's path so apps never collide.
    let parsePersistenceCookie errors (section: Section) (fallback: string option) : string option =
        match optString errors section "cookie" with
        | Some("", _) -> None
        | Some(name, at) when not (Cookies.isValidName name) ->
            addError
                errors
                (keyword section "cookie")
                at
                $"'{name}' is not a cookie name"
                "use letters, digits and !#$%&'*+-.^_`|~ (RFC 6265 token), like \"SRVID\"; \"\" turns persistence off"
            fallback
        | Some(name, at) when name.StartsWith("__Host-", StringComparison.OrdinalIgnoreCase) ->
            addError
                errors
                (keyword section "cookie")
                at
                "a __Host- cookie must have Path=/, but lb scopes the cookie to the app's path"
                "use another name, like \"SRVID\" or \"__Secure-SRVID\""
            fallback
        | Some(name, _) -> Some name
        | None -> fallback

    /// `persistence.mode`: `"named"` (the server's `cookie` value, else its name) or `"opaque"` (a digest that
    /// shows no name and is identical on every node with the same config).
    let parsePersistenceMode errors (section: Section) (fallback: CookieValueMode) : CookieValueMode =
        match optString errors section "mode" with
        | Some("named", _) -> CookieValueMode.Named
        | Some("opaque", _) -> CookieValueMode.Opaque
        | Some(other, at) ->
            addError errors (keyword section "mode") at $"'{other}' is not a persistence mode" "use \"named\" or \"opaque\""
            fallback
        | None -> fallback

    /// `persistence.move_first`: pass the persistence cookie on to the backend, moved first in `Cookie:` (the
    /// seed's Apache workaround for a legacy HAProxy < 1.3.23 behind lb). Default false: the backend never sees it.
    let parseMoveFirst errors (section: Section) (fallback: bool) : bool =
        optBool errors section "move_first" |> Option.defaultValue fallback

    /// `[persistence]` or an app's `persistence = { ... }`: each key absent here keeps the fallback's value.
    let parsePersistence errors (section: Section) (fallback: PersistenceConfig) : PersistenceConfig =
        rejectUnknownKeys errors section [ "cookie"; "mode"; "move_first" ]
        { Cookie = parsePersistenceCookie errors section fallback.Cookie
          Mode = parsePersistenceMode errors section fallback.Mode
          MoveFirst = parseMoveFirst errors section fallback.MoveFirst }

    // ---- Health checks ----------------------------------------------------------------------------

    let private defaultThresholds =
        match Health.thresholds (2, 2) with
        | Ok t -> t
        | Error e -> failwith ("default thresholds: " + String.concat "; " e)

    /// The check timeout when none is written: 2s, capped at the interval.
    let DefaultHealthTimeout = TimeSpan.FromSeconds 2.0

    let defaultHealth =
        { Enabled = true
          Method = "GET"
          Path = "/"
          Host = None
          Expected = Health.defaultExpected
          Interval = TimeSpan.FromSeconds 10.0
          Timeout = DefaultHealthTimeout
          Thresholds = defaultThresholds
          Spread = 5
          UserAgent = DefaultUserAgent }

    /// RFC 9110 §5.6.2 tchar.
    let private isTokenChar (c: char) =
        Char.IsAsciiLetterOrDigit c || "!#$%&'*+-.^_`|~".IndexOf c >= 0

    /// `health.enabled`: false runs no checks and counts every server up (default true).
    let parseHealthEnabled errors (section: Section) (fallback: bool) : bool =
        optBool errors section "enabled" |> Option.defaultValue fallback

    /// `health.method`: the check's request method, an RFC 9110 §9.1 token (case-sensitive), default GET.
    let parseHealthMethod errors (section: Section) (fallback: string) : string =
        match optString errors section "method" with
        | Some(m, _) when m <> "" && Seq.forall isTokenChar m -> m
        | Some(m, at) ->
            addError errors (keyword section "method") at $"'{m}' is not an HTTP method" "like \"GET\", \"HEAD\" or \"OPTIONS\""
            fallback
        | None -> fallback

    /// `health.path`: the check's request target in origin-form (RFC 9112 §3.2.1): starts with '/', visible
    /// ASCII (percent-encode the rest), no fragment. Default `/`.
    let parseHealthPath errors (section: Section) (fallback: string) : string =
        match optString errors section "path" with
        | Some(p, _) when p.StartsWith "/" && p |> Seq.forall (fun c -> c > ' ' && c < '\127' && c <> '#') -> p
        | Some(p, at) ->
            addError
                errors
                (keyword section "path")
                at
                $"'{p}' is not a request path"
                "start it with '/', like \"/ping\"; percent-encode spaces and non-ASCII"
            fallback
        | None -> fallback

    /// `health.host`: the Host header of a check (RFC 9110 §7.2 `host[:port]`); absent sends the server's address.
    let parseHealthHost errors (section: Section) (fallback: string option) : string option =
        let valid (h: string) =
            h <> "" && h.Length <= 255 && h |> Seq.forall (fun c -> Char.IsAsciiLetterOrDigit c || "-._~:[]".IndexOf c >= 0)
        match optString errors section "host" with
        | Some(h, _) when valid h -> Some h
        | Some(h, at) ->
            addError errors (keyword section "host") at $"'{h}' is not a host name" "like \"app1.internal\" or \"app1.internal:8080\""
            fallback
        | None -> fallback

    /// `health.expect`: statuses that pass (`Health.parseExpected`: `"200-399"`, `"2xx,404"`), default 200-399.
    let parseHealthExpect errors (section: Section) (fallback: ExpectedStatus) : ExpectedStatus =
        match optString errors section "expect" with
        | Some(spec, at) ->
            match Health.parseExpected spec with
            | Ok expected -> expected
            | Error problems ->
                for problem in problems do
                    addError errors (keyword section "expect") at problem "codes, ranges and classes separated by commas, like \"200-399\" or \"2xx,404\""
                fallback
        | None -> fallback

    /// `health.interval`: HAProxy `inter`, the time between two checks of a server (default 10s).
    let parseHealthInterval errors (section: Section) (fallback: TimeSpan) = duration errors section "interval" fallback

    /// `health.timeout`: HAProxy `timeout check`, the longest a check may take (default 2s). Rejects a timeout
    /// longer than the interval written with it: the check would still run when the next is due. A timeout not
    /// written in this table — inherited from `[health]` (`inherited`) or the default — is capped at this
    /// table's interval instead, so `health = { interval = "1s" }` under a global `timeout = "2s"` (issue 3's
    /// example) means checks every second that give up after one (HAProxy likewise falls back to `inter`).
    let parseHealthTimeout errors (section: Section) (inherited: TimeSpan option) (interval: TimeSpan) : TimeSpan =
        match tryGet section "timeout" with
        | Some(_, at, _) ->
            let timeout = duration errors section "timeout" DefaultHealthTimeout
            if timeout > interval then
                addError
                    errors
                    (keyword section "timeout")
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
        let rise = intInRange errors section "rise" 1 MaxRiseFall fallback.Rise
        let fall = intInRange errors section "fall" 1 MaxRiseFall fallback.Fall
        match Health.thresholds (rise, fall) with
        | Ok t -> t
        | Error _ -> fallback

    /// `health.spread`: percent of jitter on the interval, 0..50 (HAProxy `spread-checks`), default 5.
    let parseHealthSpread errors (section: Section) (fallback: int) : int =
        intInRange errors section "spread" 0 Health.MaxSpread fallback

    /// `health.user_agent`: the checks' User-Agent, default `lb-healthcheck/1.0`. Rejects an empty value,
    /// control characters (RFC 9110 §5.5: a field value holds no CR, LF or NUL) and non-ASCII.
    let parseHealthUserAgent errors (section: Section) (fallback: string) : string =
        match optString errors section "user_agent" with
        | Some(ua, _) when ua.Trim() = ua && ua <> "" && ua |> Seq.forall (fun c -> c >= ' ' && c < '\127') -> ua
        | Some(ua, at) ->
            addError errors (keyword section "user_agent") at $"'{ua}' cannot be a User-Agent" "printable ASCII without leading or trailing spaces"
            fallback
        | None -> fallback

    /// `[health]` or an app's `health = { ... }`: each key absent here keeps the inherited value. `inherited` is
    /// the parent's settings and the timeout written there, if any (`parseHealthTimeout` caps an inherited or
    /// default timeout at the interval); the result carries the same for children.
    let parseHealth errors (section: Section) (inherited: HealthCheckConfig * TimeSpan option) : HealthCheckConfig * TimeSpan option =
        let fallback, inheritedTimeout = inherited
        rejectUnknownKeys
            errors
            section
            [ "enabled"; "method"; "path"; "host"; "expect"; "interval"; "timeout"; "rise"; "fall"; "spread"; "user_agent" ]
        let interval = parseHealthInterval errors section fallback.Interval
        let timeout = parseHealthTimeout errors section inheritedTimeout interval
        let written = if (tryGet section "timeout").IsSome then Some timeout else inheritedTimeout
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

    // ---- Error pages ------------------------------------------------------------------------------

    /// The statuses lb answers by itself, each with a built-in page that `[errors]` can replace.
    let errorPageStatuses = [ 400; 403; 404; 408; 500; 502; 503; 504 ]

    /// `[errors]`: `503 = "errors/503.html"`, a page file per status lb answers itself. Rejects other statuses,
    /// non-string values and files that do not exist (paths are relative to the config file).
    let parseErrorPages errors (root: Section) (baseDir: string) (fileExists: string -> bool) : (int * string) array =
        match optTable errors root "errors" with
        | Some section ->
            rejectUnknownKeys errors section (errorPageStatuses |> List.map string)
            [| for key, _, _ in section.Table.Entries do
                   match Int32.TryParse key with
                   | true, status when List.contains status errorPageStatuses && key = string status ->
                       match optString errors section key with
                       | Some(path, at) ->
                           let full = resolve baseDir path
                           if path = "" || not (fileExists full) then
                               addError errors (keyword section key) at $"file not found: {full}" "paths are relative to the config file"
                           else
                               yield status, full
                       | None -> ()
                   | _ -> () |]
        | None -> [||]

    /// An app name is one URL path segment of unreserved characters (RFC 3986 §2.3), so `/name/` routes to it
    /// without any decoding ambiguity.
    let isValidAppName (name: string) =
        name.Length > 0
        && name.Length <= 64
        && name <> "."
        && name <> ".."
        && name |> Seq.forall (fun c -> Char.IsAsciiLetterOrDigit c || c = '-' || c = '_' || c = '.' || c = '~')

    /// Server names appear in logs, stats and (by default) the persistence cookie: keep them cookie-safe.
    let isValidServerName (name: string) =
        name.Length > 0 && name.Length <= 64 && name |> Seq.forall (fun c -> Char.IsAsciiLetterOrDigit c || c = '-' || c = '_' || c = '.')

    /// Server `cookie`: the persistence value naming the server in Named mode (HAProxy `server ... cookie V`).
    /// Rejects a value that is not RFC 6265 §4.1.1 cookie-octets, and any value in Opaque mode, where it would
    /// be silently ignored. None: the server name (Named) or the opaque digest.
    let parseServerCookie errors (section: Section) (mode: CookieValueMode) : string option =
        match optString errors section "cookie", mode with
        | Some(value, at), CookieValueMode.Opaque ->
            addError
                errors
                (keyword section "cookie")
                at
                $"cookie value '{value}' has no effect with persistence mode \"opaque\""
                "remove it, or set mode = \"named\" in the app's persistence"
            None
        | Some(value, at), CookieValueMode.Named when not (Cookies.isValidValue value) ->
            addError
                errors
                (keyword section "cookie")
                at
                $"'{value}' is not a cookie value"
                "visible ASCII without spaces, quotes, commas, semicolons or backslashes (RFC 6265 §4.1.1)"
            None
        | Some(value, _), CookieValueMode.Named -> Some value
        | None, _ -> None

    /// Server `maxconn`: HAProxy server `maxconn`, requests in flight to this server (1..1000000); absent means
    /// only the global limit applies.
    let parseServerMaxConn errors (section: Section) : int option =
        match optInt errors section "maxconn" with
        | Some(n, _) when n >= 1L && n <= int64 MaxConnLimit -> Some(int n)
        | Some(n, at) ->
            addError errors (keyword section "maxconn") at $"{n} is out of range" $"use a value from 1 to {MaxConnLimit}"
            None
        | None -> None

    /// One entry of `servers = [ { name, address, weight, cookie, maxconn } ]`
    /// (HAProxy `server NAME ADDR weight W cookie V maxconn M`). The cookie value is resolved here with the
    /// app's persistence mode (`Cookies.cookieValueFor`).
    let parseServer errors (appName: string) (mode: CookieValueMode) (section: Section) : ServerConfig option =
        rejectUnknownKeys errors section [ "name"; "address"; "weight"; "cookie"; "maxconn" ]
        let name =
            match optString errors section "name" with
            | Some(n, at) when not (isValidServerName n) ->
                addError errors (keyword section "name") at $"'{n}' is not a valid server name" "use letters, digits, '-', '_' or '.'"
                None
            | Some(n, _) -> Some n
            | None ->
                addError errors (keyword section "name") section.Table.At "missing" "every server needs a name"
                None
        let address =
            match endpoint errors section "address" with
            | Some e when e.Port = 0 || e.Host = "*" ->
                addError errors (keyword section "address") section.Table.At "a server needs a real host and port" "like \"10.0.0.11:8080\""
                None
            | Some e -> Some e
            | None ->
                if (tryGet section "address").IsNone then
                    addError errors (keyword section "address") section.Table.At "missing" "like address = \"10.0.0.11:8080\""
                None
        let weight = intInRange errors section "weight" 0 256 1
        let cookie = parseServerCookie errors section mode
        let maxConn = parseServerMaxConn errors section
        match name, address with
        | Some n, Some a ->
            Some
                { Name = n
                  Address = a
                  Weight = weight
                  CookieValue = Cookies.cookieValueFor (mode, appName, n, string a, cookie)
                  MaxConn = maxConn }
        | _ -> None

    let private serverSections errors (app: Section) =
        match tryGet app "servers" with
        | Some(_, _, TArray(items, _)) ->
            items
            |> List.mapi (fun i item ->
                match item with
                | TTable t -> Some { Path = $"{app.Path}.servers[{i}]"; Table = t }
                | node ->
                    addError errors $"{app.Path}.servers[{i}]" (TomlNode.position node) $"expected a table, found {TomlNode.kindName node}" "write { name = \"s1\", address = \"10.0.0.11:8080\" }"
                    None)
            |> List.choose id
        | Some(_, at, _) ->
            addError errors (keyword app "servers") at "expected an array of servers" "servers = [ { name = \"s1\", address = \"10.0.0.11:8080\" } ]"
            []
        | None ->
            addError errors (keyword app "servers") app.Table.At "missing" "every app needs at least one server"
            []

    let private rejectDuplicateServerNames errors (app: Section) (servers: ServerConfig list) =
        servers
        |> List.countBy (fun s -> s.Name)
        |> List.filter (fun (_, n) -> n > 1)
        |> List.iter (fun (name, _) ->
            addError errors (keyword app "servers") app.Table.At $"server name '{name}' is used twice" "server names must be unique within an app")

    /// Cookie values must identify one server each within an app (`Cookies.validateServerValues`); values that
    /// are not cookie-octets were already reported at their server, so only duplicates remain here.
    let private rejectDuplicateCookieValues errors (app: Section) (servers: ServerConfig list) =
        let at =
            match tryGet app "servers" with
            | Some(_, at, _) -> at
            | None -> app.Table.At
        for problem in Cookies.validateServerValues (servers |> List.map (fun s -> s.CookieValue) |> Array.ofList) do
            addError errors (keyword app "servers") at problem "give each server its own cookie value (or none: its name is used)"

    /// `[apps.NAME] balance`: `"roundrobin"` (default), `"leastconn"` or `"random"` (two choices).
    let parseBalance errors (app: Section) : BalanceAlgorithm =
        let known = [ "roundrobin"; "leastconn"; "random" ]
        match optString errors app "balance" with
        | Some("roundrobin", _)
        | None -> BalanceAlgorithm.RoundRobin
        | Some("leastconn", _) -> BalanceAlgorithm.LeastConn
        | Some("random", _) -> BalanceAlgorithm.RandomTwoChoices
        | Some(other, at) ->
            addError errors (keyword app "balance") at $"'{other}' is not a balance algorithm" (suggestion known other)
            BalanceAlgorithm.RoundRobin

    // ---- Rules: HAProxy's acl / use_backend / http-request as `when` → `then` ----------------------------

    /// The keys of a `when` table; several in one table must all hold.
    let conditionKeys = [ "path_prefix"; "path_segment"; "path_regex"; "host"; "method"; "header"; "cookie"; "source"; "all"; "any"; "not" ]

    /// The keys of a `then` table.
    let actionKeys =
        [ "deny"; "redirect"; "location"; "allow"; "route"; "pin"; "set_request_header"; "add_request_header"; "remove_request_header"
          "set_response_header"; "add_response_header"; "remove_response_header" ]

    /// Where a rule list is: the global `[[rules]]` (every app known, for `route`) or one app's (its servers, for `pin`).
    type RuleScope =
        | GlobalRules of apps: AppConfig array
        | AppRules of app: string * servers: string list

    /// A string or an array of strings, each with its position.
    let private oneOrMany errors (section: Section) key (hint: string) : (string * Position) list =
        match tryGet section key with
        | Some(_, _, TString(s, at)) -> [ s, at ]
        | Some(_, _, TArray(items, at)) ->
            if items.IsEmpty then addError errors (keyword section key) at "empty list" hint
            items
            |> List.choose (fun item ->
                match item with
                | TString(s, at) -> Some(s, at)
                | node ->
                    addError errors (keyword section key) (TomlNode.position node) $"expected a string, found {TomlNode.kindName node}" hint
                    None)
        | Some(_, at, node) ->
            addError errors (keyword section key) at $"expected a string or an array of strings, found {TomlNode.kindName node}" hint
            []
        | None -> []

    let private rulePattern errors kw at (source: string) =
        match RequestRules.pattern source with
        | Ok p -> Some p
        | Error message ->
            addError errors kw at $"bad regex /{source}/: {message}" "a .NET regex without lookarounds or backreferences, like \"^/api/v[0-9]+/\""
            None

    /// `header = { name, equals | regex }` or `cookie = { ... }` (just `name`: present).
    let private parseValueTest errors (section: Section) (isCookie: bool) : (string * ValueTest) option =
        rejectUnknownKeys errors section [ "name"; "equals"; "regex" ]
        let what = if isCookie then "cookie" else "header"
        let name =
            match optString errors section "name" with
            | Some(n, _) when (if isCookie then Cookies.isValidName n else RequestRules.isHeaderName n) -> Some n
            | Some(n, at) ->
                addError errors (keyword section "name") at $"'{n}' is not a {what} name" "letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 token)"
                None
            | None ->
                addError errors (keyword section "name") section.Table.At "missing" $"name the {what}: {{ name = \"X-Beta\" }}"
                None
        let test =
            match optString errors section "equals", optString errors section "regex" with
            | Some _, Some(_, at) ->
                addError errors (keyword section "regex") at "equals and regex are both set" "keep one: equals compares exactly, regex searches"
                None
            | Some(v, at), None when v |> Seq.exists Char.IsControl ->
                addError errors (keyword section "equals") at "a control character cannot be in a value" "printable text only"
                None
            | Some(v, _), None -> Some(ValueTest.Equals v)
            | None, Some(r, at) -> rulePattern errors (keyword section "regex") at r |> Option.map ValueTest.Matches
            | None, None -> Some ValueTest.Present
        Option.map2 (fun n t -> n, t) name test

    /// One `when` table. Returns None when it holds a mistake (reported), so a broken condition is never mistaken
    /// for an unconditional one.
    let rec parseCondition (errors: Errors) (section: Section) : Condition option =
        let before = errors.Count
        rejectUnknownKeys errors section conditionKeys
        let nested key (node: TomlNode) (path: string) =
            match node with
            | TTable t -> parseCondition errors { Path = path; Table = t }
            | other ->
                addError errors path (TomlNode.position other) $"expected a table, found {TomlNode.kindName other}" $"write {key} = {{ path_prefix = \"/x\" }}"
                None
        let parts =
            [ for name, at, node in section.Table.Entries do
                  let kw = keyword section name
                  match name, node with
                  | "path_prefix", TString(p, at) when p.StartsWith "/" -> Some(Condition.PathPrefix p)
                  | "path_segment", TString(s, _) when s <> "" && not (s.Contains '/') -> Some(Condition.PathSegment s)
                  | "path_regex", TString(r, at) -> rulePattern errors kw at r |> Option.map Condition.PathMatches
                  | "host", TString(h, _) when h <> "" && Uri.CheckHostName h <> UriHostNameType.Unknown && not (h.Contains ':' && not (h.StartsWith "[")) ->
                      Some(Condition.Host h)
                  | "method", _ ->
                      let methods = oneOrMany errors section "method" "like \"POST\" or [\"GET\", \"HEAD\"]"
                      for m, at in methods do
                          if not (RequestRules.isHeaderName m) then
                              addError errors kw at $"'{m}' is not an HTTP method" "like \"GET\" or \"POST\" (case matters, RFC 9110 §9.1)"
                      if methods.IsEmpty then None else Some(Condition.Method(methods |> List.map fst))
                  | "source", _ ->
                      let networks =
                          oneOrMany errors section "source" "like \"10.0.0.0/8\" or [\"10.0.0.0/8\", \"192.168.0.0/16\"]"
                          |> List.choose (fun (text, at) ->
                              match RequestRules.cidr text with
                              | Ok c -> Some c
                              | Error message ->
                                  addError errors kw at $"'{text}': {message}" "an address or network like \"10.0.0.0/8\" or \"2001:db8::/32\""
                                  None)
                      if networks.IsEmpty then None else Some(Condition.Source networks)
                  | ("header" | "cookie"), TTable t ->
                      parseValueTest errors { Path = kw; Table = t } (name = "cookie")
                      |> Option.map (fun (n, test) -> if name = "cookie" then Condition.Cookie(n, test) else Condition.Header(n, test))
                  | ("all" | "any"), TArray(items, at) ->
                      if items.IsEmpty then
                          addError errors kw at "empty list" $"give {name} at least one condition, or remove it"
                      let conditions = items |> List.mapi (fun i item -> nested name item $"{kw}[{i}]")
                      if conditions |> List.forall Option.isSome && not items.IsEmpty then
                          let cs = conditions |> List.choose id
                          Some(if name = "all" then Condition.All cs else Condition.Any cs)
                      else None
                  | "not", node -> nested "not" node kw |> Option.map Condition.Not
                  | name, node when List.contains name conditionKeys ->
                      let hint =
                          match name with
                          | "path_prefix" -> "a string starting with '/', like \"/admin\""
                          | "path_segment" -> "one segment without '/', like \"admin\""
                          | "path_regex" -> "a string, like \"^/api/\""
                          | "host" -> "a host name without port, like \"www.example.com\""
                          | "header" | "cookie" -> $"write {name} = {{ name = \"...\", equals = \"...\" }}"
                          | _ -> $"write {name} = [ {{ ... }}, {{ ... }} ]"
                      let found =
                          match node with
                          | TString(s, _) -> $"'{s}'"
                          | other -> TomlNode.kindName other
                      addError errors kw at $"{found} is not a {name} condition" hint
                      None
                  | _ -> None ]
        if errors.Count > before then None
        else
            match parts |> List.choose id with
            | [] -> Some Condition.Always
            | [ one ] -> Some one
            | many -> Some(Condition.All many)

    /// `set_*_header = { Name = "value" }`, `add_*_header = { ... }`, `remove_*_header = ["Name"]`. Rejects names
    /// that are not tokens, the headers lb manages (`RequestRules.managedHeaders`) and values with control characters.
    let private parseHeaderEdits errors (section: Section) (direction: string) : HeaderEdit list =
        let checkName kw at (name: string) =
            if not (RequestRules.isHeaderName name) then
                addError errors kw at $"'{name}' is not a header name" "letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 token)"
                false
            elif List.contains (name.ToLowerInvariant()) RequestRules.managedHeaders then
                addError errors kw at $"lb manages {name} itself" "rules cannot change Host, framing, connection or X-Forwarded-* headers"
                false
            else true
        let valued verb (make: string * string -> HeaderEdit) =
            let key = $"{verb}_{direction}_header"
            match tryGet section key with
            | Some(_, _, TTable t) ->
                [ for name, at, node in t.Entries do
                      let kw = keyword section key + "." + name
                      match node with
                      | TString(v, vat) when RequestRules.isHeaderValue v -> if checkName kw at name then yield make (name, v)
                      | TString(v, vat) -> addError errors kw vat $"'{v}' cannot be a header value" "printable ASCII, no leading or trailing space"
                      | other -> addError errors kw (TomlNode.position other) $"expected a string, found {TomlNode.kindName other}" "write { \"X-Env\" = \"beta\" }" ]
            | Some(_, at, node) ->
                addError errors (keyword section key) at $"expected a table, found {TomlNode.kindName node}" "write { \"X-Env\" = \"beta\" }"
                []
            | None -> []
        let removed =
            let key = $"remove_{direction}_header"
            oneOrMany errors section key "like [\"X-Debug\"]"
            |> List.choose (fun (name, at) -> if checkName (keyword section key) at name then Some(HeaderEdit.Remove name) else None)
        valued "set" HeaderEdit.Set @ valued "add" HeaderEdit.Add @ removed

    /// One `then` table. Rejects an unknown action (with a did-you-mean), a deny, redirect or allow combined with
    /// anything, `location` without `redirect`, a `route` outside the global rules or to an unknown app, and a
    /// `pin` naming a server the app does not have.
    let parseAction (errors: Errors) (section: Section) (scope: RuleScope) : RuleAction option =
        let before = errors.Count
        for name, at, _ in section.Table.Entries do
            if not (List.contains name actionKeys) then
                match [ "request"; "response" ] |> List.tryFind (fun d -> name.EndsWith $"_{d}_header") with
                | Some d ->
                    addError errors (keyword section name) at "unknown header action" $"use set_{d}_header, add_{d}_header or remove_{d}_header"
                | None -> addError errors (keyword section name) at "unknown action" (suggestion actionKeys name)
        let present = section.Table.Entries |> List.map (fun (name, at, _) -> name, at)
        let has key = present |> List.exists (fun (n, _) -> n = key)
        let exclusive key =
            for name, at in present do
                if name <> key && not (key = "redirect" && name = "location") && List.contains name actionKeys then
                    addError errors (keyword section name) at $"{key} cannot be combined with {name}" $"a {key} is the whole answer: move {name} to its own rule"
        let action =
            if has "deny" then
                exclusive "deny"
                match optInt errors section "deny" with
                | Some(s, _) when s >= 400L && s <= 599L -> Some(RuleAction.Deny(int s))
                | Some(s, at) ->
                    addError errors (keyword section "deny") at $"{s} is not an error status" "use 400 to 599, like 403"
                    None
                | None -> None
            elif has "redirect" then
                exclusive "redirect"
                let status =
                    match optInt errors section "redirect" with
                    | Some(s, _) when List.contains s [ 301L; 302L; 303L; 307L; 308L ] -> Some(int s)
                    | Some(s, at) ->
                        addError errors (keyword section "redirect") at $"{s} is not a redirect status" "use 301, 302, 303, 307 or 308"
                        None
                    | None -> None
                let location =
                    match optString errors section "location" with
                    | Some(l, at) ->
                        match RequestRules.checkLocation l with
                        | [] -> Some l
                        | problems ->
                            for p in problems do
                                addError errors (keyword section "location") at p "like \"https://${host}/maintenance.html\" or \"/new${path}${query}\""
                            None
                    | None ->
                        addError errors (keyword section "location") section.Table.At "missing" "redirect to where: location = \"/maintenance.html\""
                        None
                Option.map2 (fun s l -> RuleAction.Redirect(s, l)) status location
            elif has "allow" then
                exclusive "allow"
                match optBool errors section "allow" with
                | Some true -> Some(RuleAction.Forward { Route = None; Pin = []; RequestHeaders = []; ResponseHeaders = [] })
                | Some false ->
                    let at = present |> List.find (fun (n, _) -> n = "allow") |> snd
                    addError errors (keyword section "allow") at "allow = false says nothing" "write allow = true, or deny = 403"
                    None
                | None -> None
            else
                if has "location" then
                    let at = present |> List.find (fun (n, _) -> n = "location") |> snd
                    addError errors (keyword section "location") at "location without redirect" "add redirect = 302"
                let route =
                    match optString errors section "route", scope with
                    | Some(_, at), AppRules _ ->
                        addError errors (keyword section "route") at "route belongs in the global [[rules]]" "an app's rules see only that app's requests"
                        None
                    | Some(name, at), GlobalRules apps when not (apps |> Array.exists (fun a -> a.Name = name)) ->
                        addError errors (keyword section "route") at $"no app is named '{name}'" (suggestion (apps |> Array.map (fun a -> a.Name) |> List.ofArray) name)
                        None
                    | Some(name, _), GlobalRules _ -> Some name
                    | None, _ -> None
                let servers =
                    match scope, route with
                    | AppRules(_, servers), _ -> Some servers
                    | GlobalRules apps, Some app -> apps |> Array.tryFind (fun a -> a.Name = app) |> Option.map (fun a -> a.Servers |> Array.map (fun s -> s.Name) |> List.ofArray)
                    | GlobalRules _, None -> None
                let pin =
                    let names = oneOrMany errors section "pin" "like [\"app1_3\"]"
                    match names, servers with
                    | [], _ -> []
                    | (_, at) :: _, None ->
                        if errors.Count = before then
                            addError errors (keyword section "pin") at "pin needs an app: a global rule pins with route" "add route = \"app1\", or move the rule to [[apps.app1.rules]]"
                        []
                    | names, Some servers ->
                        for name, at in names do
                            if not (List.contains name servers) then
                                addError errors (keyword section "pin") at $"no server is named '{name}'" (suggestion servers name)
                        names |> List.map fst |> List.distinct
                let edits = parseHeaderEdits errors section "request", parseHeaderEdits errors section "response"
                if present.IsEmpty then
                    addError errors section.Path section.Table.At "empty" "say what to do: deny = 403, redirect = 302 + location, allow = true, pin, route or a header action"
                Some(RuleAction.Forward { Route = route; Pin = pin; RequestHeaders = fst edits; ResponseHeaders = snd edits })
        if errors.Count > before then None else action

    /// `[[rules]]` or `[[apps.NAME.rules]]`: each `when` → `then`, in order. Rejects unknown keys, a rule without
    /// `then`, and a rule after an unconditional one (it could never be read).
    let parseRules (errors: Errors) (parent: Section) (scope: RuleScope) : Rule array =
        let path = keyword parent "rules"
        let tables =
            match tryGet parent "rules" with
            | Some(_, _, TArray(items, _)) ->
                items
                |> List.mapi (fun i item ->
                    match item with
                    | TTable t -> Some { Path = $"{path}[{i}]"; Table = t }
                    | node ->
                        addError errors $"{path}[{i}]" (TomlNode.position node) $"expected a table, found {TomlNode.kindName node}" $"write [[{path}]] sections"
                        None)
                |> List.choose id
            | Some(_, at, node) ->
                addError errors path at $"expected an array of tables, found {TomlNode.kindName node}" $"write [[{path}]] sections"
                []
            | None -> []
        let parsed =
            [ for rule in tables do
                  rejectUnknownKeys errors rule [ "when"; "then" ]
                  let condition =
                      match tryGet rule "when" with
                      | Some(_, _, TTable t) -> parseCondition errors { Path = keyword rule "when"; Table = t }
                      | Some(_, at, node) ->
                          addError errors (keyword rule "when") at $"expected a table, found {TomlNode.kindName node}" "write when = { path_prefix = \"/admin\" }"
                          None
                      | None -> Some Condition.Always
                  let action =
                      match optTable errors rule "then" with
                      | Some t -> parseAction errors t scope
                      | None ->
                          if (tryGet rule "then").IsNone then
                              addError errors (keyword rule "then") rule.Table.At "missing" "say what to do: then = { deny = 403 }"
                          None
                  rule, Option.map2 (fun w t -> { Name = rule.Path; When = w; Then = t }) condition action ]
        // Unreachable: a rule after one with no `when` (STYLE rule 3: reported with its place, never silently dead).
        parsed
        |> List.fold
            (fun (blocker: Rule option) (section, rule) ->
                match blocker with
                | Some b ->
                    addError errors section.Path section.Table.At $"unreachable: {b.Name} above has no when and matches every request" $"move this rule above {b.Name}, or give {b.Name} a when"
                    blocker
                | None -> rule |> Option.filter RequestRules.isUnconditional)
            None
        |> ignore
        parsed |> List.choose snd |> Array.ofList

    /// `[apps.NAME] cache`: true sends the app's GET/HEAD responses through the shared cache (`[cache]`);
    /// default false, as Apache's mod_cache caches nothing without `CacheEnable`.
    let parseAppCache errors (app: Section) : bool = optBool errors app "cache" |> Option.defaultValue false

    /// `[apps.NAME] max_request_body`: this app's body limit, over `[defaults] max_request_body` (None: that one).
    let parseAppMaxRequestBody errors (app: Section) : int64 option =
        match tryGet app "max_request_body" with
        | Some _ -> Some(requestBodySize errors app defaultDefaults.MaxRequestBody)
        | None -> None

    /// `[apps.NAME]`: one application reached as `/NAME/`, with its servers (HAProxy `backend NAME`). Its
    /// `persistence` and `health` tables override the global ones key by key.
    let parseApp
        errors
        (app: Section)
        (name: string)
        (at: Position)
        (persistence: PersistenceConfig)
        (health: HealthCheckConfig * TimeSpan option)
        : AppConfig option =
        rejectUnknownKeys errors app [ "servers"; "balance"; "persistence"; "health"; "cache"; "max_request_body"; "rules" ]
        if not (isValidAppName name) then
            addError errors app.Path at $"'{name}' cannot be an app name" "an app name is one path segment: letters, digits, '-', '_', '.', '~'"
        let balance = parseBalance errors app
        let persistence =
            match optTable errors app "persistence" with
            | Some table -> parsePersistence errors table persistence
            | None -> persistence
        let health =
            match optTable errors app "health" with
            | Some table -> fst (parseHealth errors table health)
            | None -> fst health
        let servers = serverSections errors app |> List.choose (parseServer errors name persistence.Mode)
        if servers.IsEmpty && (tryGet app "servers").IsSome then
            addError errors (keyword app "servers") app.Table.At "no valid server" "every app needs at least one server"
        rejectDuplicateServerNames errors app servers
        rejectDuplicateCookieValues errors app servers
        if servers.IsEmpty then
            None
        else
            Some
                { Name = name
                  Servers = Array.ofList servers
                  Balance = balance
                  Persistence = persistence
                  Health = health
                  Cache = parseAppCache errors app
                  MaxRequestBody = parseAppMaxRequestBody errors app
                  Rules = parseRules errors app (AppRules(name, servers |> List.map (fun s -> s.Name))) }

    let parseApps errors (root: Section) (persistence: PersistenceConfig) (health: HealthCheckConfig * TimeSpan option) : AppConfig array =
        match optTable errors root "apps" with
        | Some apps ->
            [| for name, at, node in apps.Table.Entries do
                   match node with
                   | TTable t ->
                       match parseApp errors { Path = $"apps.{name}"; Table = t } name at persistence health with
                       | Some app -> yield app
                       | None -> ()
                   | other -> addError errors $"apps.{name}" at $"expected a table, found {TomlNode.kindName other}" $"write [apps.{name}]" |]
        | None ->
            addError errors "apps" root.Table.At "no app is configured" "add [apps.app1] with servers = [...]"
            [||]

    // ---- Stats and logs ---------------------------------------------------------------------------

    /// `[stats] listen` when absent: loopback, so the page is not on the network unless asked for.
    let DefaultStatsListen = { Host = "127.0.0.1"; Port = 8000 }

    /// `[stats] listen`: the stats listener's address (default 127.0.0.1:8000). Rejects an address that is not
    /// host:port, port 0, and the address of the http or https listener.
    let parseStatsListen errors (stats: Section) (listen: ListenConfig) : Endpoint =
        let at = tryGet stats "listen" |> Option.map (fun (_, p, _) -> p) |> Option.defaultValue stats.Table.At
        match endpoint errors stats "listen" with
        | Some e when e.Port = 0 ->
            addError errors (keyword stats "listen") at "the stats listener needs a fixed port" "like \"127.0.0.1:8000\""
            e
        | Some e when Some e = listen.Http || Some e = listen.Https ->
            addError errors (keyword stats "listen") at $"{e} is already a proxy listener" "give the stats page its own port"
            e
        | Some e -> e
        | None -> DefaultStatsListen

    /// Text that goes inside an HTTP quoted-string or a header unchanged: printable ASCII, no `"` or `\`
    /// (RFC 9110 §5.6.4 would need escapes, which browsers show literally).
    let private isPlainHeaderText (s: string) =
        s <> "" && s.Length <= 100 && s |> Seq.forall (fun c -> c >= ' ' && c < '\127' && c <> '"' && c <> '\\')

    /// `[stats] realm`: the Basic realm the browser shows (default "lb stats"). Rejects empty text, quotes,
    /// backslashes, control and non-ASCII characters.
    let parseStatsRealm errors (stats: Section) : string =
        match optString errors stats "realm" with
        | Some(r, _) when isPlainHeaderText r -> r
        | Some(r, at) ->
            addError errors (keyword stats "realm") at $"'{r}' cannot be a realm" "printable ASCII without quotes or backslashes, like \"lb stats\""
            "lb stats"
        | None -> "lb stats"

    /// `[stats] user`: the Basic user name (default "admin"). Rejects empty text, `:` (RFC 7617 §2: the user-id
    /// cannot contain a colon), quotes, backslashes, control and non-ASCII characters.
    let parseStatsUser errors (stats: Section) : string =
        match optString errors stats "user" with
        | Some(u, _) when isPlainHeaderText u && not (u.Contains ':') -> u
        | Some(u, at) ->
            addError errors (keyword stats "user") at $"'{u}' cannot be a user name" "printable ASCII without ':', quotes or backslashes (RFC 7617 §2)"
            "admin"
        | None -> "admin"

    /// `[stats] password_hash` (what `lb hash-password` prints) or `password_file` (a file holding that line,
    /// relative to the config file), exactly one of them. Rejects both or neither, a file that cannot be read,
    /// text that is not a hash (`Password.parse`), and a hash of an empty or well-known password or of the
    /// user name (`Password.findWellKnown`): the seed's `stats auth admin:admin` must not come back.
    let parseStatsPassword errors (stats: Section) (baseDir: string) (io: ConfigIo) (user: string) : PasswordHash option =
        let fromText kw at (text: string) =
            match Password.parse text with
            | Error message ->
                addError errors kw at message "run `lb hash-password` and paste the line it prints"
                None
            | Ok hash ->
                match Password.findWellKnown (hash, user) with
                | Some "" ->
                    addError errors kw at "the password is empty" "choose a password and run `lb hash-password`"
                    None
                | Some known ->
                    let what = if known = user then "the user name" else $"the well-known password '{known}'"
                    addError errors kw at $"the password is {what}" "choose another password and run `lb hash-password`"
                    None
                | None -> Some hash
        match optString errors stats "password_hash", optString errors stats "password_file" with
        | Some _, Some(_, at) ->
            addError errors (keyword stats "password_file") at "password_hash and password_file are both set" "keep one of them"
            None
        | Some(text, at), None -> fromText (keyword stats "password_hash") at text
        | None, Some(path, at) ->
            let full = resolve baseDir path
            match io.ReadText full with
            | Ok text -> fromText (keyword stats "password_file") at text
            | Error message ->
                addError errors (keyword stats "password_file") at $"cannot read {full}: {message}" "paths are relative to the config file"
                None
        | None, None ->
            addError errors (keyword stats "password_hash") stats.Table.At "missing" "run `lb hash-password` and add password_hash = \"...\" under [stats]"
            None

    /// `[stats] refresh`: how often the page reloads itself (default 10s, 1s to 1h).
    let parseStatsRefresh errors (stats: Section) : TimeSpan =
        let refresh = duration errors stats "refresh" (TimeSpan.FromSeconds 10.0)
        if refresh < TimeSpan.FromSeconds 1.0 || refresh > TimeSpan.FromHours 1.0 then
            let at = tryGet stats "refresh" |> Option.map (fun (_, p, _) -> p) |> Option.defaultValue stats.Table.At
            addError errors (keyword stats "refresh") at $"{formatDuration refresh} is out of range" "use a value from 1s to 1h"
        refresh

    /// `[stats] pinned_window`: a client counts as pinned to a server for this long after its last request
    /// with that server's cookie (default 5m, 1s to 24h).
    let parseStatsPinnedWindow errors (stats: Section) : TimeSpan =
        let window = duration errors stats "pinned_window" (TimeSpan.FromMinutes 5.0)
        if window < TimeSpan.FromSeconds 1.0 || window > TimeSpan.FromHours 24.0 then
            let at = tryGet stats "pinned_window" |> Option.map (fun (_, p, _) -> p) |> Option.defaultValue stats.Table.At
            addError errors (keyword stats "pinned_window") at $"{formatDuration window} is out of range" "use a value from 1s to 24h"
        window

    /// `[stats]`: the stats page, JSON, CSV, Prometheus metrics and admin actions on their own listener. Absent:
    /// no stats listener.
    let parseStats errors (root: Section) (baseDir: string) (io: ConfigIo) (listen: ListenConfig) : StatsConfig option =
        match optTable errors root "stats" with
        | Some stats ->
            rejectUnknownKeys errors stats [ "listen"; "realm"; "user"; "password_hash"; "password_file"; "refresh"; "pinned_window" ]
            let endpoint = parseStatsListen errors stats listen
            let realm = parseStatsRealm errors stats
            let user = parseStatsUser errors stats
            let password = parseStatsPassword errors stats baseDir io user
            let refresh = parseStatsRefresh errors stats
            let window = parseStatsPinnedWindow errors stats
            password
            |> Option.map (fun hash ->
                { Listen = endpoint
                  Realm = realm
                  User = user
                  PasswordHash = hash
                  Refresh = refresh
                  PinnedWindow = window })
        | None -> None

    let defaultLog = { Access = AccessLogTarget.Stdout }

    /// `[log] access`: `"stdout"` (default), `"off"`, or a file path (relative to the config file) appended to.
    /// Rejects an empty value.
    let parseAccessLog errors (log: Section) (baseDir: string) : AccessLogTarget =
        match optString errors log "access" with
        | Some("stdout", _)
        | None -> AccessLogTarget.Stdout
        | Some("off", _) -> AccessLogTarget.Off
        | Some(path, at) when String.IsNullOrWhiteSpace path ->
            addError errors (keyword log "access") at "empty" "use \"stdout\", \"off\" or a file path"
            AccessLogTarget.Stdout
        | Some(path, _) -> AccessLogTarget.File(resolve baseDir path)

    /// `[log]`: where the access log goes.
    let parseLog errors (root: Section) (baseDir: string) : LogConfig =
        match optTable errors root "log" with
        | Some log ->
            rejectUnknownKeys errors log [ "access" ]
            { Access = parseAccessLog errors log baseDir }
        | None -> defaultLog


    // ---- [vrrp] (keepalived's vrrp_instance) ----------------------------------------------------------

    let private vrrpKeys =
        [ "interface"; "virtual_router_id"; "priority"; "advert_int"; "version"; "virtual_ips"; "preempt"; "preempt_delay"
          "garp_master_delay"; "garp_master_repeat"; "garp_master_refresh"; "unicast_peers"; "track_interfaces"; "track_self"
          "track_script"; "auth_pass" ]

    let private stringArray errors (section: Section) key : (string * Position) list =
        match tryGet section key with
        | Some(_, _, TArray(items, _)) ->
            items
            |> List.choose (fun item ->
                match item with
                | TString(s, at) -> Some(s, at)
                | node ->
                    addError errors (keyword section key) (TomlNode.position node) $"expected a string, found {TomlNode.kindName node}" "write [\"a\", \"b\"]"
                    None)
        | Some(_, at, node) ->
            addError errors (keyword section key) at $"expected an array, found {TomlNode.kindName node}" "write [\"a\", \"b\"]"
            []
        | None -> []

    /// `virtual_ips`: IPv4 addresses with a prefix length, `192.0.2.100/24` (a bare address means /32).
    let isValidVirtualIp (text: string) =
        let address, prefix =
            match text.IndexOf '/' with
            | -1 -> text, "32"
            | i -> text.Substring(0, i), text.Substring(i + 1)
        let dotted = address.Split '.'
        dotted.Length = 4
        && dotted |> Array.forall (fun part -> part.Length > 0 && part.Length <= 3 && part |> Seq.forall Char.IsAsciiDigit && int part <= 255)
        && (match Int32.TryParse prefix with
            | true, p -> p >= 1 && p <= 32 && prefix |> Seq.forall Char.IsAsciiDigit
            | _ -> false)

    let parseVirtualIps errors (vrrp: Section) =
        let ips = stringArray errors vrrp "virtual_ips"
        for ip, at in ips do
            if not (isValidVirtualIp ip) then
                addError errors (keyword vrrp "virtual_ips") at $"'{ip}' is not an IPv4 address with prefix" "write it like \"192.0.2.100/24\""
        if ips.IsEmpty then
            addError errors (keyword vrrp "virtual_ips") vrrp.Table.At "no virtual IP" "add virtual_ips = [\"192.0.2.100/24\"]"
        ips |> List.map fst |> Array.ofList

    let parseUnicastPeers errors (vrrp: Section) =
        let peers = stringArray errors vrrp "unicast_peers"
        for peer, at in peers do
            if not (isValidVirtualIp (peer + "/32")) then
                addError errors (keyword vrrp "unicast_peers") at $"'{peer}' is not an IPv4 address" "write it like \"192.0.2.12\""
        peers |> List.map fst |> Array.ofList

    /// `advert_int`: VRRPv2 counts whole seconds 1..255 (RFC 3768 §5.3.7); VRRPv3 centiseconds up to 40.95 s (RFC 5798 §5.2.7).
    let parseAdvertInterval errors (vrrp: Section) version =
        let interval = duration errors vrrp "advert_int" (TimeSpan.FromSeconds 1.0)
        let at = tryGet vrrp "advert_int" |> Option.map (fun (_, p, _) -> p) |> Option.defaultValue vrrp.Table.At
        if version = 2 && (interval.TotalSeconds < 1.0 || interval.TotalSeconds > 255.0 || interval.Milliseconds <> 0) then
            addError errors (keyword vrrp "advert_int") at "VRRPv2 advertises in whole seconds, 1s to 255s" "use version = 3 for sub-second intervals"
        elif version = 3 && (interval.TotalMilliseconds < 10.0 || interval.TotalMilliseconds > 40950.0 || int interval.TotalMilliseconds % 10 <> 0) then
            addError errors (keyword vrrp "advert_int") at "VRRPv3 advertises in steps of 10ms, 10ms to 40.95s" "like \"100ms\" or \"1s\""
        interval

    /// `[[vrrp.track_script]]`: `command`, `interval` (2s), `weight` (0), `rise` (1), `fall` (1).
    let parseTrackScripts errors (vrrp: Section) : TrackScriptConfig array =
        match tryGet vrrp "track_script" with
        | Some(_, _, TArray(items, _)) ->
            [| for i, item in List.indexed items do
                   match item with
                   | TTable t ->
                       let script = { Path = $"{vrrp.Path}.track_script[{i}]"; Table = t }
                       rejectUnknownKeys errors script [ "command"; "interval"; "weight"; "rise"; "fall" ]
                       match optString errors script "command" with
                       | Some(command, _) when command.Trim() <> "" ->
                           yield
                               { Command = command
                                 Interval = duration errors script "interval" (TimeSpan.FromSeconds 2.0)
                                 Weight = intInRange errors script "weight" -254 254 0
                                 Rise = intInRange errors script "rise" 1 1000 1
                                 Fall = intInRange errors script "fall" 1 1000 1 }
                       | _ -> addError errors (keyword script "command") script.Table.At "missing" "the command to run, exit 0 = success"
                   | node -> addError errors $"{vrrp.Path}.track_script[{i}]" (TomlNode.position node) "expected a table" "write [[vrrp.track_script]]" |]
        | Some(_, at, _) ->
            addError errors (keyword vrrp "track_script") at "expected an array of tables" "write [[vrrp.track_script]] sections"
            [||]
        | None -> [||]

    /// `track_self = { weight = 2 }`: lb checks its own listeners (the seed's `killall -0 apache2`, weight 2).
    let parseTrackSelf errors (vrrp: Section) : int option =
        match tryGet vrrp "track_self" with
        | Some(_, _, TTable t) ->
            let section = { Path = keyword vrrp "track_self"; Table = t }
            rejectUnknownKeys errors section [ "weight"; "enabled" ]
            if optBool errors section "enabled" = Some false then None else Some(intInRange errors section "weight" -254 254 2)
        | Some(_, _, TBoolean(false, _)) -> None
        | Some(_, _, TBoolean(true, _)) -> Some 2
        | Some(_, at, node) ->
            addError errors (keyword vrrp "track_self") at $"expected a table, found {TomlNode.kindName node}" "write track_self = { weight = 2 }"
            Some 2
        | None -> Some 2

    /// `[vrrp]`: every keyword of keepalived's vrrp_instance that lb supports.
    let parseVrrp errors (root: Section) : VrrpConfig option =
        match optTable errors root "vrrp" with
        | None -> None
        | Some vrrp ->
            rejectUnknownKeys errors vrrp vrrpKeys
            let iface =
                match optString errors vrrp "interface" with
                | Some(name, _) when name.Trim() <> "" -> name
                | _ ->
                    addError errors (keyword vrrp "interface") vrrp.Table.At "missing" "the interface that carries the VIP, like \"eth0\""
                    ""
            let version = intInRange errors vrrp "version" 2 3 3
            let password = optString errors vrrp "auth_pass"
            match password with
            | Some(p, at) when version <> 2 || p.Length > 8 || p = "" ->
                addError errors (keyword vrrp "auth_pass") at "auth_pass is VRRPv2's simple password: 1 to 8 characters, version = 2" "RFC 5798 removed authentication; prefer version = 3 without it"
            | _ -> ()
            if (tryGet vrrp "virtual_router_id").IsNone then
                addError errors (keyword vrrp "virtual_router_id") vrrp.Table.At "missing" "1 to 255, the same on both nodes, unique on the LAN"
            Some
                { Interface = iface
                  VirtualRouterId = intInRange errors vrrp "virtual_router_id" 1 255 51
                  Priority = intInRange errors vrrp "priority" 1 255 100
                  AdvertInterval = parseAdvertInterval errors vrrp version
                  Version = version
                  VirtualIps = parseVirtualIps errors vrrp
                  Preempt = optBool errors vrrp "preempt" |> Option.defaultValue true
                  PreemptDelay = (if (tryGet vrrp "preempt_delay").IsSome then duration errors vrrp "preempt_delay" TimeSpan.Zero else TimeSpan.Zero)
                  GarpMasterDelay = duration errors vrrp "garp_master_delay" (TimeSpan.FromSeconds 5.0)
                  GarpMasterRepeat = intInRange errors vrrp "garp_master_repeat" 1 100 5
                  GarpMasterRefresh = (if (tryGet vrrp "garp_master_refresh").IsSome then duration errors vrrp "garp_master_refresh" TimeSpan.Zero else TimeSpan.Zero)
                  UnicastPeers = parseUnicastPeers errors vrrp
                  TrackInterfaces = stringArray errors vrrp "track_interfaces" |> List.map fst |> Array.ofList
                  TrackSelfWeight = parseTrackSelf errors vrrp
                  TrackScripts = parseTrackScripts errors vrrp
                  AuthPassword = password |> Option.map fst }

    // ---- [cache] (Apache's mod_cache, RFC 9111) -----------------------------------------------------

    /// `ConfigReading.parseSize`, where every section's sizes are read.
    let parseSize text = ConfigReading.parseSize text

    /// `ConfigReading.formatSize`.
    let formatSize bytes = ConfigReading.formatSize bytes

    let defaultCache =
        { MemoryBytes = 256L <<< 20
          MaxEntryBytes = 1L <<< 20
          Dir = None
          DiskBytes = 1L <<< 30
          XCacheHeader = true }

    /// `[cache] memory`: the memory store's bound, 64KB to 64GB (default 256MB).
    let parseCacheMemory errors (cache: Section) : int64 =
        size errors cache "memory" (64L <<< 10) (64L <<< 30) defaultCache.MemoryBytes

    /// `[cache] max_entry`: the largest body stored, 1KB up to `memory` (default 1MB, or `memory` if smaller).
    /// Rejects a value larger than `memory`: no such entry could ever be kept.
    let parseCacheMaxEntry errors (cache: Section) (memory: int64) : int64 =
        size errors cache "max_entry" (1L <<< 10) memory (min defaultCache.MaxEntryBytes memory)

    /// `[cache] dir`: the disk store's folder (relative to the config file), created at start. Rejects an empty value.
    let parseCacheDir errors (cache: Section) (baseDir: string) : string option =
        match optString errors cache "dir" with
        | Some(path, at) when String.IsNullOrWhiteSpace path ->
            addError errors (keyword cache "dir") at "empty" "a folder, like \"/var/cache/lb\"; leave dir out to keep entries in memory only"
            None
        | Some(path, _) -> Some(resolve baseDir path)
        | None -> None

    /// `[cache] disk`: the disk store's bound, 1MB to 16TB (default 1GB). Rejects it without `dir`, where it
    /// would be silently ignored.
    let parseCacheDisk errors (cache: Section) (dir: string option) : int64 =
        match tryGet cache "disk", dir with
        | Some(_, at, _), None ->
            addError errors (keyword cache "disk") at "disk has no effect without dir" "add dir = \"/var/cache/lb\" or remove disk"
            defaultCache.DiskBytes
        | _ -> size errors cache "disk" (1L <<< 20) (16L <<< 40) defaultCache.DiskBytes

    /// `[cache] x_cache_header`: add `X-Cache: HIT|MISS|REVALIDATED` to responses of cached apps (default true).
    let parseCacheXHeader errors (cache: Section) : bool =
        optBool errors cache "x_cache_header" |> Option.defaultValue defaultCache.XCacheHeader

    /// `[cache]`: the shared cache's stores and headers. Absent: the defaults (apps still opt in with `cache = true`).
    let parseCache errors (root: Section) (baseDir: string) : CacheConfig =
        match optTable errors root "cache" with
        | Some cache ->
            rejectUnknownKeys errors cache [ "memory"; "max_entry"; "dir"; "disk"; "x_cache_header" ]
            let memory = parseCacheMemory errors cache
            let dir = parseCacheDir errors cache baseDir
            { MemoryBytes = memory
              MaxEntryBytes = parseCacheMaxEntry errors cache memory
              Dir = dir
              DiskBytes = parseCacheDisk errors cache dir
              XCacheHeader = parseCacheXHeader errors cache }
        | None -> defaultCache

    /// Reads the whole file. `baseDir` resolves relative paths; file access is injected (`io`) so this stays pure.
    let parseTextWith (io: ConfigIo) (text: string) (baseDir: string) : Result<LbConfig, ConfigError list> =
        let fileExists = io.FileExists
        match TomlTree.parse text with
        | Error syntax ->
            Error
                [ for message, at in syntax ->
                      { Keyword = "syntax"; Line = at.Line; Column = at.Column; Message = message; Hint = "see https://toml.io for TOML syntax" } ]
        | Ok table ->
            let errors = Errors()
            let root = { Path = ""; Table = table }
            rejectUnknownKeys errors root topLevelKeys
            let node = parseNode errors root
            let listen = parseListen errors root
            let tls = parseTls errors root baseDir io listen
            let defaults = parseDefaults errors root
            let persistence =
                parsePersistence errors (optTable errors root "persistence" |> Option.defaultValue (absent "persistence" root.Table.At)) defaultPersistence
            let health =
                parseHealth errors (optTable errors root "health" |> Option.defaultValue (absent "health" root.Table.At)) (defaultHealth, None)
            let errorPages = parseErrorPages errors root baseDir fileExists
            let apps = parseApps errors root persistence health
            let stats = parseStats errors root baseDir io listen
            let log = parseLog errors root baseDir
            let vrrp = parseVrrp errors root
            let cache = parseCache errors root baseDir
            let rules = parseRules errors root (GlobalRules apps)
            // A global rule without `when` decides every request: no app's rules can ever be read.
            match rules |> Array.tryFind RequestRules.isUnconditional, tryGet root "apps" with
            | Some blocker, Some(_, _, TTable appTables) ->
                for name, _, node in appTables.Entries do
                    match node with
                    | TTable t ->
                        match tryGet { Path = $"apps.{name}"; Table = t } "rules" with
                        | Some(_, at, _) ->
                            addError errors $"apps.{name}.rules" at $"unreachable: global {blocker.Name} has no when and matches every request first" $"give {blocker.Name} a when, or remove these rules"
                        | None -> ()
                    | _ -> ()
            | _ -> ()
            if errors.Count > 0 then
                Error(errors |> Seq.sortBy (fun e -> e.Line, e.Column) |> List.ofSeq)
            else
                Ok
                    { Node = node
                      Listen = listen
                      Tls = tls
                      Defaults = defaults
                      Apps = apps
                      ErrorPages = errorPages
                      Stats = stats
                      Log = log
                      Vrrp = vrrp
                      Cache = cache
                      Rules = rules }

    /// `parseTextWith` checking only that files exist (tests, and callers that load certificates themselves).
    let parseText (text: string) (baseDir: string) (fileExists: string -> bool) =
        parseTextWith { FileExists = fileExists; CheckTls = (fun _ -> []); ReadText = fun _ -> Error "not read here" } text baseDir

    /// The one-line summary `lb check` prints for a valid config.
    let summary (config: LbConfig) =
        let servers = config.Apps |> Array.sumBy (fun a -> a.Servers.Length)
        let listeners =
            [ config.Listen.Https |> Option.map (fun e -> $"https {e}")
              config.Listen.Http
              |> Option.map (fun e ->
                  let mode = if config.Listen.PlainHttp = PlainHttpMode.Proxy then "proxy" else "redirect"
                  $"http {e} ({mode})")
              config.Stats |> Option.map (fun s -> $"stats {s.Listen}") ]
            |> List.choose id
        $"config OK: node {config.Node.Name}, {config.Apps.Length} apps, {servers} servers, " + String.Join(", ", listeners)
