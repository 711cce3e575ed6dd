namespace Lb.Rules

open System

/// A host and port as written in config: an IPv4/IPv6 literal or a host name, and a TCP port.
type Endpoint =
    { Host: string
      Port: int }

    /// `host:port`, with IPv6 literals in brackets (RFC 3986 §3.2.2), as used in URLs and Host headers.
    override this.ToString() =
        if this.Host.Contains ':' then $"[{this.Host}]:{this.Port}" else $"{this.Host}:{this.Port}"

/// What the plain-HTTP listener does with a request.
[<RequireQualifiedAccess>]
type PlainHttpMode =
    /// Apache's `RewriteRule ^(.*)$ https://%{HTTP_HOST}$1 [R,L]`: every request is redirected to https.
    | RedirectToHttps
    /// Proxy plain HTTP like the https listener, for setups where TLS ends in front of lb.
    | Proxy

type NodeConfig =
    { Name: string
      /// `reload_on_change`: also reload when the config file (or a TLS file) changes, not only on SIGHUP.
      ReloadOnChange: bool
      /// `warm_up`: how long lb drives a private copy of its request path before it opens its listeners (zero: off).
      WarmUp: TimeSpan }

type ListenConfig =
    { Http: Endpoint option
      Https: Endpoint option
      PlainHttp: PlainHttpMode
      /// Status of the http→https and `/app`→`/app/` redirects (Apache's `[R]` is 302).
      RedirectStatus: int }

/// PEM files, paths already resolved against the config file's folder.
type TlsConfig =
    { Cert: string
      Key: string
      Chain: string option }

/// `[defaults] encoded_slashes`: what a request path holding an encoded slash or backslash (`%2F`, `%5C`, any
/// case, or a literal `\`) gets: Apache `AllowEncodedSlashes Off | NoDecode | On` (`Paths.normalizeIn`).
[<RequireQualifiedAccess>]
type EncodedSlashes =
    /// `reject` (default; Apache `Off`, the seed): 404, before routing.
    | Reject
    /// `keep` (Apache `NoDecode`): forwarded still encoded, as data within one segment; 400 when a segment is an
    /// encoded dot segment (`%2e%2e`) or a piece between encoded slashes is `.` or `..` (`..%2F`, `%2F..`, `.%2F`).
    | Keep
    /// `decode` (Apache `On`): decoded to `/` (a backslash too, as browsers read `\` in http URLs), then dot
    /// segments removed and slashes merged like literal ones, and routed on the result.
    | Decode

    /// The config word: `reject`, `keep`, `decode`.
    member this.Keyword =
        match this with
        | Reject -> "reject"
        | Keep -> "keep"
        | Decode -> "decode"

type DefaultsConfig =
    { Retries: int
      Redispatch: bool
      TimeoutConnect: TimeSpan
      TimeoutClient: TimeSpan
      TimeoutServer: TimeSpan
      /// HAProxy global `maxconn`: requests in flight across lb; the excess waits in a queue.
      MaxConn: int
      /// HAProxy `timeout queue`: how long a queued request waits for a slot before it gets 503.
      TimeoutQueue: TimeSpan
      /// HAProxy `retry-on response-timeout`: an idempotent request without body whose server stayed silent
      /// past `timeout_server` is sent again (off by default: the server may have acted on it).
      RetryOnTimeout: bool
      /// HAProxy `hard-stop-after`: how long a stopping lb lets in-flight requests finish before it cuts them.
      TimeoutShutdown: TimeSpan
      /// `encoded_slashes`: what a path with `%2F` or `%5C` gets (Apache `AllowEncodedSlashes`).
      EncodedSlashes: EncodedSlashes
      /// `max_request_body`: the largest request body in bytes, for apps that set none (Apache `LimitRequestBody`).
      MaxRequestBody: int64
      /// `max_request_headers`: the most bytes of request header fields (Kestrel `MaxRequestHeadersTotalSize`).
      MaxRequestHeaders: int64 }

/// How an app picks a server for a request that is not pinned (HAProxy `balance`).
[<RequireQualifiedAccess>]
type BalanceAlgorithm =
    /// `roundrobin`: smooth weighted round robin (`Balancing.roundRobin`).
    | RoundRobin
    /// `leastconn`: fewest active connections per weight (`Balancing.leastConn`).
    | LeastConn
    /// `random`: two weighted draws, the less loaded wins (`Balancing.randomTwoChoices`, HAProxy `random(2)`).
    | RandomTwoChoices

/// HAProxy `cookie NAME insert indirect nocache`, per app.
type PersistenceConfig =
    { /// The cookie name; None turns persistence off (config `cookie = ""`).
      Cookie: string option
      Mode: CookieValueMode
      /// The seed's legacy workaround (Apache moving the cookie first for HAProxy < 1.3.23), opt-in: the
      /// backend chain then receives the persistence cookie, moved to the front, instead of never seeing it.
      MoveFirst: bool }

/// HAProxy `option httpchk METHOD PATH`, `http-check expect`, `check inter T rise R fall F`, `spread-checks`.
type HealthCheckConfig =
    { Enabled: bool
      Method: string
      Path: string
      /// The Host header of a check; None sends the server's own address.
      Host: string option
      Expected: ExpectedStatus
      Interval: TimeSpan
      Timeout: TimeSpan
      Thresholds: HealthThresholds
      /// Percent of jitter on the interval, 0..50 (`Health.nextCheckDelay`).
      Spread: int
      /// Sent as `User-Agent`, so backends can leave checks out of their logs.
      UserAgent: string }

type ServerConfig =
    { Name: string
      Address: Endpoint
      Weight: int
      /// The persistence cookie value naming this server, resolved at load (`Cookies.cookieValueFor`):
      /// the configured `cookie`, else the server name; the opaque digest when the app's mode is Opaque.
      CookieValue: string
      /// HAProxy server `maxconn`: requests in flight to this server; None means only the global limit.
      MaxConn: int option }

type AppConfig =
    { Name: string
      Servers: ServerConfig array
      Balance: BalanceAlgorithm
      Persistence: PersistenceConfig
      Health: HealthCheckConfig
      /// `cache = true`: responses of this app go through the shared HTTP cache (`CachePolicy`, RFC 9111).
      Cache: bool
      /// `max_request_body`: this app's request body limit; None takes `[defaults] max_request_body` (`RequestLimits`).
      MaxRequestBody: int64 option
      /// `[[apps.NAME.rules]]`: read after the global rules, for this app's requests only (`RequestRules`).
      Rules: Rule array }

    /// The public path prefix of the app: `/app1`.
    member this.Prefix = "/" + this.Name

    /// The persistence cookie value of every server, index-aligned with `Servers`.
    member this.CookieValues: string array = this.Servers |> Array.map (fun s -> s.CookieValue)

/// `[stats]`: the stats listener (the seed's `listen admin_stats` + `stats auth`, with no clear-text password).
type StatsConfig =
    { Listen: Endpoint
      /// The HTTP Basic realm (RFC 7617 §2), shown by browsers in the login prompt.
      Realm: string
      User: string
      /// From `password_hash`, or read from `password_file`.
      PasswordHash: PasswordHash
      /// How often the page reloads itself.
      Refresh: TimeSpan
      /// How long a pinned client counts as still pinned after its last request (recently seen cookies).
      PinnedWindow: TimeSpan }

/// `[log] access`: where the access log goes.
[<RequireQualifiedAccess>]
type AccessLogTarget =
    | Stdout
    /// An absolute path, appended to.
    | File of path: string
    | Off

type LogConfig = { Access: AccessLogTarget }

/// `[[vrrp.track_script]]`: keepalived's `vrrp_script` (a command run every interval; exit 0 = success).
type TrackScriptConfig =
    { Command: string
      Interval: TimeSpan
      /// Added to the priority while the script succeeds (positive) or subtracted while it fails (negative).
      Weight: int
      Rise: int
      Fall: int }

/// `[vrrp]`: keepalived's `vrrp_instance`, the virtual IP shared by two lb nodes.
type VrrpConfig =
    { Interface: string
      VirtualRouterId: int
      Priority: int
      AdvertInterval: TimeSpan
      /// 2 (RFC 3768) or 3 (RFC 5798).
      Version: int
      /// `192.0.2.100/24`: IPv4 address and prefix length.
      VirtualIps: string array
      Preempt: bool
      PreemptDelay: TimeSpan
      GarpMasterDelay: TimeSpan
      GarpMasterRepeat: int
      /// Gratuitous ARP repeated this often while master (zero: off), so a healed split brain finds the VIP.
      GarpMasterRefresh: TimeSpan
      UnicastPeers: string array
      TrackInterfaces: string array
      /// `track_self = { weight = 2 }`: lb's own listeners, the seed's `killall -0 apache2`. None: off.
      TrackSelfWeight: int option
      TrackScripts: TrackScriptConfig array
      /// VRRPv2 `auth_pass` (keepalived interop), at most 8 characters.
      AuthPassword: string option }

/// `[cache]`: the shared HTTP cache (RFC 9111) that apps with `cache = true` go through (Apache's mod_cache).
type CacheConfig =
    { /// `memory`: the most bytes the memory store holds (bodies, headers and keys); least recently used go first.
      MemoryBytes: int64
      /// `max_entry`: a response with a larger body is not stored (Apache `CacheMaxFileSize`).
      MaxEntryBytes: int64
      /// `dir`: an absolute folder for the disk store, which survives a restart; None keeps entries in memory only.
      Dir: string option
      /// `disk`: the most bytes the disk store holds.
      DiskBytes: int64
      /// `x_cache_header`: add `X-Cache: HIT|MISS|REVALIDATED` to responses of cached apps.
      XCacheHeader: bool }

/// The whole validated configuration. Built only by `Config.parse`, so every value here passed validation.
type LbConfig =
    { Node: NodeConfig
      Listen: ListenConfig
      Tls: TlsConfig option
      Defaults: DefaultsConfig
      Apps: AppConfig array
      /// `[errors]`: status → absolute path of the page file that replaces the built-in page.
      ErrorPages: (int * string) array
      /// `[stats]`: None when the section is absent (no stats listener).
      Stats: StatsConfig option
      Log: LogConfig
      /// `[vrrp]`: None when this node runs no VRRP.
      Vrrp: VrrpConfig option
      /// `[cache]`: defaults when the section is absent; only apps with `cache = true` use it.
      Cache: CacheConfig
      /// `[[rules]]`: read first for every request that would be proxied, before any app's rules (`RequestRules`).
      Rules: Rule array }

/// A configuration error with its place in the file and a hint on how to fix it.
type ConfigError =
    { Keyword: string
      Line: int
      Column: int
      Message: string
      Hint: string }

    /// `LINE:COL: keyword: message (hint: ...)`, one line of visible text: messages quote values from the file,
    /// whose control characters (a TOML string may hold any) would break the line an editor jumps to or reach
    /// the terminal as escape sequences, so each is shown as `\xHH`.
    override this.ToString() =
        let hint = if String.IsNullOrEmpty this.Hint then "" else $" (hint: {this.Hint})"
        ConfigError.Visible $"{this.Line}:{this.Column}: {this.Keyword}: {this.Message}{hint}"

    static member private Visible(text: string) =
        if not (text |> Seq.exists Char.IsControl) then
            text
        else
            text
            |> Seq.map (fun c -> if Char.IsControl c then $"\\x{int c:x2}" else string c)
            |> String.concat ""
