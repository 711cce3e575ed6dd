namespace Lb.Rules

open System

/// A config keyword as the docs list it: its table, its name, its default written as TOML (None: the key has no
/// default, it is required or its absence means something of its own), and one line saying what it does.
type KeywordInfo =
    { Section: string
      Name: string
      Default: TomlValue option
      Doc: string }

/// A config keyword with a default, written once: the loader reads its name and default from here, `lb config
/// show` (`TomlRender`) writes a value with `Render` and marks it `# default` when it equals `Default`, the F#
/// DSL (`ConfigDsl`) writes its settings with the same name and `Render`, and C# reads the defaults it needs.
type Keyword<'T> =
    { Section: string
      Name: string
      Default: 'T
      Doc: string
      /// A value as the config file writes it (what the loader reads back to the same value).
      Render: 'T -> TomlValue
      /// A keyword whose value is one of a few words: each value with its word, read and written by both
      /// (`Keyword.word`). Empty for other keywords.
      Words: ('T * string) list }

    /// The row of this keyword in the docs' table.
    member k.Info: KeywordInfo =
        { Section = k.Section; Name = k.Name; Default = Some(k.Render k.Default); Doc = k.Doc }

/// Making keywords: one constructor per kind of value.
[<RequireQualifiedAccess>]
module Keyword =
    let private make section name (fallback: 'T) (render: 'T -> TomlValue) doc : Keyword<'T> =
        { Section = section; Name = name; Default = fallback; Doc = doc; Render = render; Words = [] }

    let int section name (fallback: int) doc = make section name fallback (fun i -> TomlValue.Integer(int64 i)) doc
    let bool section name (fallback: bool) doc = make section name fallback TomlValue.Boolean doc
    let string section name (fallback: string) doc = make section name fallback TomlValue.String doc

    /// A duration, written as `ConfigReading.formatDuration` does (`"10s"`, `"250ms"`).
    let duration section name (fallback: TimeSpan) doc =
        make section name fallback (fun d -> TomlValue.String(ConfigReading.formatDuration d)) doc

    /// A list of strings, empty by default.
    let strings section name doc =
        make section name ([||]: string array) (fun items -> TomlValue.Array [ for s in items -> TomlValue.String s ]) doc

    /// A value of its own kind: a word, a size, a table.
    let custom section name (fallback: 'T) (render: 'T -> TomlValue) doc = make section name fallback render doc

    /// A size in bytes, written as `ConfigReading.formatSize` does (`"256MB"`).
    let size section name (fallback: int64) doc =
        make section name fallback (fun bytes -> TomlValue.String(ConfigReading.formatSize bytes)) doc

    /// A value that is one of `words`, written as its word.
    let word section name (fallback: 'T) (words: ('T * string) list) doc : Keyword<'T> =
        let render value =
            words |> List.tryFind (fun (v, _) -> v = value) |> Option.map snd |> Option.defaultValue "" |> TomlValue.String
        { make section name fallback render doc with Words = words }

    /// The value a word names, if it is one of the keyword's words (case-sensitive, as TOML keys).
    let read (k: Keyword<'T>) (word: string) : 'T option =
        k.Words |> List.tryFind (fun (_, w) -> w = word) |> Option.map fst

    /// The keyword's word as `section` writes it: Ok with its value, Error with a word it does not know and where
    /// it stands (the caller reports it), None when the key is absent.
    let optWord errors (section: ConfigReading.Section) (k: Keyword<'T>) : Result<'T, string * Position> option =
        ConfigReading.optString errors section k.Name
        |> Option.map (fun (word, at) ->
            match read k word with
            | Some value -> Ok value
            | None -> Error(word, at))

    /// The keyword's words, for a hint: `"roundrobin", "leastconn" or "random"`.
    let wordList (k: Keyword<'T>) : string list = k.Words |> List.map snd

    /// The hint for a word the keyword does not know: `use "named" or "opaque"`.
    let wordHint (k: Keyword<'T>) : string =
        match wordList k |> List.map (fun w -> $"\"{w}\"") |> List.rev with
        | [] -> ""
        | [ one ] -> $"use {one}"
        | last :: others -> "use " + String.Join(", ", List.rev others) + " or " + last

    /// A keyword without a default value: required, or its absence means something of its own (said in `doc`).
    let info section name doc : KeywordInfo = { Section = section; Name = name; Default = None; Doc = doc }

/// Every keyword of `[node]`, `[listen]`, `[tls]`, `[defaults]`, `[persistence]`, `[health]`, `[apps.NAME]` and its
/// servers, `[stats]`, `[log]`, `[cache]`, `[vrrp]` and `[[vrrp.track_script]]` with its default, written once
/// (`[errors]` keys are statuses, `[[rules]]` keys are in `RulesSection`).
/// C# reads a keyword by its PascalCase name (`Keywords.Stats.PinnedWindow.Default`); `all` and `names` are F#
/// lists for the loader, `lb config show` and the tests. Each section's `all` lists its keywords in the
/// order the docs and `lb config show` write them; `names` is what the loader accepts there.
[<RequireQualifiedAccess>]
module Keywords =
    let private namesOf (all: KeywordInfo list) = all |> List.map (fun k -> k.Name)

    /// `[node]`.
    module Node =
        /// The table's name in the config file.
        [<Literal>]
        let Table = "node"

        [<CompiledName("Name")>]
        let name = Keyword.string Table "name" "lb" "this load balancer's name in logs, stats and VRRP (HAProxy `node lb1`)"
        [<CompiledName("ReloadOnChange")>]
        let reloadOnChange = Keyword.bool Table "reload_on_change" false "also reload when the config file or a TLS file changes, not only on SIGHUP"
        [<CompiledName("WarmUp")>]
        let warmUp = Keyword.duration Table "warm_up" TimeSpan.Zero "drive a private copy of the request path this long before listening (\"0s\": off)"
        let all = [ name.Info; reloadOnChange.Info; warmUp.Info ]
        let names = namesOf all

    /// `[listen]`.
    module Listen =
        /// The table's name in the config file.
        [<Literal>]
        let Table = "listen"

        [<CompiledName("Http")>]
        let http = Keyword.info Table "http" "the plain-HTTP listener, `host:port`"
        [<CompiledName("Https")>]
        let https = Keyword.info Table "https" "the https listener, `host:port` (needs `[tls]`)"
        [<CompiledName("PlainHttp")>]
        let plainHttp =
            Keyword.word Table "plain_http" PlainHttpMode.RedirectToHttps [ PlainHttpMode.RedirectToHttps, "redirect"; PlainHttpMode.Proxy, "proxy" ]
                "\"redirect\" sends plain HTTP to https (Apache's port-80 vhost), \"proxy\" proxies it"
        [<CompiledName("RedirectStatus")>]
        let redirectStatus = Keyword.int Table "redirect_status" 302 "status of the http→https and /app→/app/ redirects (Apache's [R] is 302)"
        let all = [ http; https; plainHttp.Info; redirectStatus.Info ]
        let names = namesOf all

    /// `[tls]`: PEM files, relative to the config file (Apache `SSLCertificateFile`, `...KeyFile`, `...ChainFile`).
    module Tls =
        /// The table's name in the config file.
        [<Literal>]
        let Table = "tls"

        [<CompiledName("Cert")>]
        let cert = Keyword.info Table "cert" "the PEM server certificate (required with an https listener)"
        [<CompiledName("Key")>]
        let key = Keyword.info Table "key" "the PEM private key of cert (required)"
        [<CompiledName("Chain")>]
        let chain = Keyword.info Table "chain" "PEM intermediates, sent after the certificate (default: none)"
        let all = [ cert; key; chain ]
        let names = namesOf all

    /// `[defaults]`: HAProxy's defaults section and global `maxconn`, `hard-stop-after`.
    module Defaults =
        /// The table's name in the config file.
        [<Literal>]
        let Table = "defaults"

        [<CompiledName("Retries")>]
        let retries = Keyword.int Table "retries" 3 "connection attempts after the first (HAProxy `retries`)"
        [<CompiledName("Redispatch")>]
        let redispatch = Keyword.bool Table "redispatch" true "a retry may go to another server (HAProxy `option redispatch`)"
        [<CompiledName("TimeoutConnect")>]
        let timeoutConnect = Keyword.duration Table "timeout_connect" (TimeSpan.FromSeconds 5.0) "the longest wait for a server's connection (HAProxy `contimeout`)"
        [<CompiledName("TimeoutClient")>]
        let timeoutClient = Keyword.duration Table "timeout_client" (TimeSpan.FromSeconds 50.0) "the longest silence of a client (HAProxy `clitimeout`)"
        [<CompiledName("TimeoutServer")>]
        let timeoutServer = Keyword.duration Table "timeout_server" (TimeSpan.FromSeconds 50.0) "the longest silence of a server (HAProxy `srvtimeout`)"
        [<CompiledName("MaxConn")>]
        let maxConn = Keyword.int Table "maxconn" 2000 "requests in flight across lb; the excess waits in a queue (HAProxy global `maxconn`)"
        [<CompiledName("TimeoutQueue")>]
        let timeoutQueue = Keyword.duration Table "timeout_queue" (TimeSpan.FromSeconds 5.0) "the longest a queued request waits for a slot before 503 (HAProxy `timeout queue`)"
        [<CompiledName("RetryOnTimeout")>]
        let retryOnTimeout = Keyword.bool Table "retry_on_timeout" false "resend an idempotent request without body after a server timeout (HAProxy `retry-on response-timeout`)"
        [<CompiledName("TimeoutShutdown")>]
        let timeoutShutdown = Keyword.duration Table "timeout_shutdown" (TimeSpan.FromSeconds 30.0) "how long a stopping lb lets requests finish (HAProxy `hard-stop-after`)"
        [<CompiledName("EncodedSlashes")>]
        let encodedSlashes =
            Keyword.word Table "encoded_slashes" EncodedSlashes.Reject
                [ EncodedSlashes.Reject, "reject"; EncodedSlashes.Keep, "keep"; EncodedSlashes.Decode, "decode" ]
                "what a path with %2F or %5C gets: \"reject\" 404 (Apache AllowEncodedSlashes Off), \"keep\" (NoDecode), \"decode\" (On)"
        [<CompiledName("MaxRequestBody")>]
        let maxRequestBody = Keyword.size Table "max_request_body" (1L <<< 30) "the largest request body of an app that sets none; over it 413 (Apache `LimitRequestBody`)"
        [<CompiledName("MaxRequestHeaders")>]
        let maxRequestHeaders = Keyword.size Table "max_request_headers" (32L <<< 10) "the most bytes of request header fields; over it 431 (Kestrel `MaxRequestHeadersTotalSize`)"
        let all =
            [ retries.Info; redispatch.Info; timeoutConnect.Info; timeoutClient.Info; timeoutServer.Info; maxConn.Info
              timeoutQueue.Info; retryOnTimeout.Info; timeoutShutdown.Info; encodedSlashes.Info; maxRequestBody.Info
              maxRequestHeaders.Info ]
        let names = namesOf all

    /// `[persistence]` and an app's `persistence = { ... }`: HAProxy `cookie NAME insert indirect nocache`.
    module Persistence =
        /// The table's name in the config file.
        [<Literal>]
        let Table = "persistence"

        [<CompiledName("Cookie")>]
        let cookie =
            Keyword.custom
                Table
                "cookie"
                (Some Cookies.DefaultName)
                (fun name -> TomlValue.String(defaultArg name ""))
                "the persistence cookie's name; \"\" turns persistence off"
        [<CompiledName("Mode")>]
        let mode =
            Keyword.word Table "mode" CookieValueMode.Named [ CookieValueMode.Named, "named"; CookieValueMode.Opaque, "opaque" ]
                "\"named\": the server's cookie value or name; \"opaque\": a digest that names no server"
        [<CompiledName("MoveFirst")>]
        let moveFirst = Keyword.bool Table "move_first" false "pass the cookie on to the backend, moved first (the seed's legacy workaround)"
        let all = [ cookie.Info; mode.Info; moveFirst.Info ]
        let names = namesOf all

    /// The version in the default health-check User-Agent.
    [<Literal>]
    let Version = "1.0"

    /// `lb-healthcheck/<version>`: backends can leave checks out of their logs, as the seed's backends do.
    [<Literal>]
    let DefaultUserAgent = "lb-healthcheck/" + Version

    /// `Lb.Rules.Health`'s, before `Keywords.Health` hides that name.
    let private defaultExpected = Health.defaultExpected

    /// `[health]` and an app's `health = { ... }`: HAProxy `option httpchk`, `check inter rise fall`.
    module Health =
        /// The table's name in the config file.
        [<Literal>]
        let Table = "health"

        [<CompiledName("Enabled")>]
        let enabled = Keyword.bool Table "enabled" true "false runs no checks and counts every server up"
        [<CompiledName("Method")>]
        let method = Keyword.string Table "method" "GET" "the check's request method"
        [<CompiledName("Path")>]
        let path = Keyword.string Table "path" "/" "the check's request target"
        [<CompiledName("Host")>]
        let host = Keyword.info Table "host" "the Host header of a check; absent sends the server's address"
        [<CompiledName("Expect")>]
        let expect =
            Keyword.custom Table "expect" defaultExpected (fun e -> TomlValue.String(string e)) "statuses that pass, like \"200-399\" or \"2xx,404\""
        [<CompiledName("Interval")>]
        let interval = Keyword.duration Table "interval" (TimeSpan.FromSeconds 10.0) "the time between two checks of a server (HAProxy `inter`)"
        [<CompiledName("Timeout")>]
        let timeout = Keyword.duration Table "timeout" (TimeSpan.FromSeconds 2.0) "the longest a check may take, capped at the interval when not written (HAProxy `timeout check`)"
        [<CompiledName("Rise")>]
        let rise = Keyword.int Table "rise" 2 "consecutive successes to count a server up"
        [<CompiledName("Fall")>]
        let fall = Keyword.int Table "fall" 2 "consecutive failures to count a server down"
        [<CompiledName("Spread")>]
        let spread = Keyword.int Table "spread" 5 "percent of jitter on the interval (HAProxy `spread-checks`)"
        [<CompiledName("UserAgent")>]
        let userAgent = Keyword.string Table "user_agent" DefaultUserAgent "the checks' User-Agent"
        let all =
            [ enabled.Info; method.Info; path.Info; host; expect.Info; interval.Info; timeout.Info; rise.Info; fall.Info
              spread.Info; userAgent.Info ]
        let names = namesOf all

    /// `[stats]`: the stats listener.
    module Stats =
        /// The table's name in the config file.
        [<Literal>]
        let Table = "stats"

        [<CompiledName("Listen")>]
        let listen =
            Keyword.custom Table "listen" { Host = "127.0.0.1"; Port = 8000 } (fun e -> TomlValue.String(string e)) "the stats listener's address, loopback unless asked for"
        [<CompiledName("Realm")>]
        let realm = Keyword.string Table "realm" "lb stats" "the HTTP Basic realm the browser shows"
        [<CompiledName("User")>]
        let user = Keyword.string Table "user" "admin" "the HTTP Basic user name"
        [<CompiledName("PasswordHash")>]
        let passwordHash = Keyword.info Table "password_hash" "what `lb hash-password` prints (or password_file, exactly one)"
        [<CompiledName("PasswordFile")>]
        let passwordFile = Keyword.info Table "password_file" "a file holding the password_hash line, relative to the config file"
        [<CompiledName("Refresh")>]
        let refresh = Keyword.duration Table "refresh" (TimeSpan.FromSeconds 10.0) "how often the page reloads itself"
        [<CompiledName("PinnedWindow")>]
        let pinnedWindow = Keyword.duration Table "pinned_window" (TimeSpan.FromMinutes 5.0) "how long a client counts as pinned after its last request"
        let all = [ listen.Info; realm.Info; user.Info; passwordHash; passwordFile; refresh.Info; pinnedWindow.Info ]
        let names = namesOf all

    /// `[log]`.
    module Log =
        /// The table's name in the config file.
        [<Literal>]
        let Table = "log"

        [<CompiledName("Access")>]
        let access =
            Keyword.custom
                Table
                "access"
                AccessLogTarget.Stdout
                (fun target ->
                    TomlValue.String(
                        match target with
                        | AccessLogTarget.Stdout -> "stdout"
                        | AccessLogTarget.Off -> "off"
                        | AccessLogTarget.File path -> path
                    ))
                "\"stdout\", \"off\", or a file (relative to the config file) appended to"
        let all = [ access.Info ]
        let names = namesOf all

    /// `[[vrrp.track_script]]`: keepalived's `vrrp_script`.
    module TrackScript =
        [<CompiledName("Command")>]
        let command = Keyword.info "vrrp.track_script" "command" "the command to run through /bin/sh; exit 0 = success"
        [<CompiledName("Interval")>]
        let interval = Keyword.duration "vrrp.track_script" "interval" (TimeSpan.FromSeconds 2.0) "how often the command runs"
        [<CompiledName("Weight")>]
        let weight = Keyword.int "vrrp.track_script" "weight" 0 "added to the priority while it succeeds (> 0) or fails (< 0); 0: FAULT while it fails"
        [<CompiledName("Rise")>]
        let rise = Keyword.int "vrrp.track_script" "rise" 1 "consecutive successes to count it up"
        [<CompiledName("Fall")>]
        let fall = Keyword.int "vrrp.track_script" "fall" 1 "consecutive failures to count it down"
        let all = [ command; interval.Info; weight.Info; rise.Info; fall.Info ]
        let names = namesOf all

    /// `[vrrp]`: keepalived's `vrrp_instance` (defaults as keepalived's where it has one).
    module Vrrp =
        /// The table's name in the config file.
        [<Literal>]
        let Table = "vrrp"

        [<CompiledName("Interface")>]
        let iface = Keyword.info Table "interface" "the interface that carries the VIP (required)"
        [<CompiledName("VirtualRouterId")>]
        let virtualRouterId = Keyword.info Table "virtual_router_id" "1 to 255, the same on both nodes, unique on the LAN (required; RFC 5798 §5.2.3)"
        [<CompiledName("Priority")>]
        let priority = Keyword.int Table "priority" 100 "1..255, the higher is master (RFC 5798 §5.2.4)"
        [<CompiledName("AdvertInterval")>]
        let advertInterval = Keyword.duration Table "advert_int" (TimeSpan.FromSeconds 1.0) "the advertisement interval (RFC 3768 §5.3.7, RFC 5798 §5.2.7)"
        [<CompiledName("Version")>]
        let version = Keyword.int Table "version" 3 "2 (RFC 3768) or 3 (RFC 5798)"
        [<CompiledName("VirtualIps")>]
        let virtualIps = Keyword.info Table "virtual_ips" "IPv4 addresses with prefix, like \"192.0.2.100/24\" (required)"
        [<CompiledName("Preempt")>]
        let preempt = Keyword.bool Table "preempt" true "a higher-priority backup takes over from a lower master (false: keepalived `nopreempt`)"
        [<CompiledName("PreemptDelay")>]
        let preemptDelay = Keyword.duration Table "preempt_delay" TimeSpan.Zero "delay before a preempting takeover (\"0s\": none)"
        [<CompiledName("GarpMasterDelay")>]
        let garpMasterDelay = Keyword.duration Table "garp_master_delay" (TimeSpan.FromSeconds 5.0) "delay before the second gratuitous-ARP burst after becoming master (\"0s\": none)"
        [<CompiledName("GarpMasterRepeat")>]
        let garpMasterRepeat = Keyword.int Table "garp_master_repeat" 5 "gratuitous ARPs per VIP in each burst"
        [<CompiledName("GarpMasterRefresh")>]
        let garpMasterRefresh = Keyword.duration Table "garp_master_refresh" TimeSpan.Zero "repeat a gratuitous-ARP burst this often while master (\"0s\": off)"
        [<CompiledName("UnicastPeers")>]
        let unicastPeers = Keyword.strings Table "unicast_peers" "send adverts to these addresses instead of multicast"
        [<CompiledName("TrackInterfaces")>]
        let trackInterfaces = Keyword.strings Table "track_interfaces" "link down on any of these = FAULT"
        /// `track_self = { weight = W }`: the weight of lb's own check.
        [<CompiledName("TrackSelfWeight")>]
        let trackSelfWeight = Keyword.int "vrrp.track_self" "weight" 2 "added to the priority while lb's listeners answer (> 0), or subtracted while they do not (< 0)"
        /// `track_self = { weight = W }`, or `false` (None) for no self check.
        [<CompiledName("TrackSelf")>]
        let trackSelf =
            Keyword.custom
                Table
                "track_self"
                (Some trackSelfWeight.Default)
                (fun weight ->
                    match weight with
                    | Some w -> TomlValue.Table [ "weight", TomlValue.Integer(int64 w) ]
                    | None -> TomlValue.Boolean false)
                "lb checks its own listeners, the seed's `killall -0 apache2` with its weight"
        [<CompiledName("TrackScript")>]
        let trackScript = Keyword.info Table "track_script" "[[vrrp.track_script]] tables: keepalived's vrrp_script (none by default)"
        [<CompiledName("AuthPass")>]
        let authPass = Keyword.info Table "auth_pass" "VRRPv2's simple password, 1 to 8 characters (version = 2 only)"
        let all =
            [ iface; virtualRouterId; priority.Info; advertInterval.Info; version.Info; virtualIps; preempt.Info; preemptDelay.Info
              garpMasterDelay.Info; garpMasterRepeat.Info; garpMasterRefresh.Info; unicastPeers.Info; trackInterfaces.Info
              trackSelf.Info; trackScript; authPass ]
        let names = namesOf all

    /// `[apps.NAME]`: one application (HAProxy `backend NAME`).
    module App =
        [<CompiledName("Servers")>]
        let servers = Keyword.info "apps.NAME" "servers" "the app's servers, an array of inline tables (at least one)"
        [<CompiledName("Balance")>]
        let balance =
            Keyword.word
                "apps.NAME"
                "balance"
                BalanceAlgorithm.RoundRobin
                [ BalanceAlgorithm.RoundRobin, "roundrobin"
                  BalanceAlgorithm.LeastConn, "leastconn"
                  BalanceAlgorithm.RandomTwoChoices, "random" ]
                "how a new client's server is picked: \"roundrobin\", \"leastconn\" or \"random\" (two choices)"
        [<CompiledName("Persistence")>]
        let persistence = Keyword.info "apps.NAME" "persistence" "overrides [persistence] key by key"
        [<CompiledName("Health")>]
        let health = Keyword.info "apps.NAME" "health" "overrides [health] key by key"
        [<CompiledName("Cache")>]
        let cache = Keyword.bool "apps.NAME" "cache" false "the app's GET/HEAD responses go through the shared cache ([cache])"
        [<CompiledName("Rules")>]
        let rules = Keyword.info "apps.NAME" "rules" "[[apps.NAME.rules]]: read after the global rules, for this app's requests"
        [<CompiledName("MaxRequestBody")>]
        let maxRequestBody = Keyword.info "apps.NAME" "max_request_body" "this app's request body limit, over [defaults] max_request_body"
        let all = [ servers; balance.Info; persistence; health; cache.Info; maxRequestBody; rules ]
        let names = namesOf all

    /// One of `servers = [ { ... } ]` (HAProxy `server NAME ADDR weight W cookie V maxconn M`).
    module Server =
        [<CompiledName("Name")>]
        let name = Keyword.info "apps.NAME.servers" "name" "the server's name, unique in the app (required)"
        [<CompiledName("Address")>]
        let address = Keyword.info "apps.NAME.servers" "address" "host:port of the backend (required)"
        [<CompiledName("Weight")>]
        let weight = Keyword.int "apps.NAME.servers" "weight" 1 "share of new clients; 0 takes no new client but keeps its pinned ones"
        [<CompiledName("Cookie")>]
        let cookie = Keyword.info "apps.NAME.servers" "cookie" "the persistence value naming the server (default: its name)"
        [<CompiledName("MaxConn")>]
        let maxConn = Keyword.info "apps.NAME.servers" "maxconn" "requests in flight to this server (default: only the global limit)"
        let all = [ name; address; weight.Info; cookie; maxConn ]
        let names = namesOf all

    /// `[cache]`: the shared HTTP cache (Apache's mod_cache, RFC 9111).
    module Cache =
        /// The table's name in the config file.
        [<Literal>]
        let Table = "cache"

        let private size = Keyword.size
        [<CompiledName("Memory")>]
        let memory = size Table "memory" (256L <<< 20) "the most bytes the memory store holds"
        /// Its default is capped at `memory` when that is smaller (`CacheSection.parseCacheMaxEntry`).
        [<CompiledName("MaxEntry")>]
        let maxEntry = size Table "max_entry" (1L <<< 20) "a response with a larger body is not stored (Apache `CacheMaxFileSize`)"
        [<CompiledName("Dir")>]
        let dir = Keyword.info Table "dir" "a folder for the disk store, which survives a restart (default: memory only)"
        [<CompiledName("Disk")>]
        let disk = size Table "disk" (1L <<< 30) "the most bytes the disk store holds (needs dir)"
        [<CompiledName("XCacheHeader")>]
        let xCacheHeader = Keyword.bool Table "x_cache_header" true "add X-Cache: HIT|MISS|REVALIDATED to responses of cached apps"
        let all = [ memory.Info; maxEntry.Info; dir; disk.Info; xCacheHeader.Info ]
        let names = namesOf all
