namespace Lb.Rules

open System

/// The F# config DSL: a whole site as a compile-checked F# value, over the same model and the same defaults as
/// the TOML file.
///
/// ```fsharp
/// open Lb.Rules.ConfigDsl
/// let mySite =
///     site {
///         node "lb1"
///         http "127.0.0.1:8080"
///         https "127.0.0.1:8443" (tls "lb.crt" "lb.key")
///         app "app1" {
///             server "app1_1" "10.0.0.11:80"
///             server "app1_2" "10.0.0.12:80" |> weight 2
///             balance LeastConn
///             persistence (cookie "SRVID")
///             health { checkPath "/ping"; checkInterval (seconds 1) }
///         }
///     }
/// ConfigDsl.parse "/etc/lb" File.Exists mySite   // Result<LbConfig, ConfigError list>
/// ```
///
/// Rules: `rule (PathPrefix "/admin" &&& Not(Source [ "10.0.0.0/8" ])) (Deny 403)` at the top of a site (global
/// rules) or inside an app (its own).
///
/// What the types rule out, so it does not compile: a server, a balance or `cache` outside an app; a deny or
/// redirect combined with another action; an
/// https listener without a certificate and key (`https` takes them); a redirect status other than 301, 302,
/// 303, 307, 308; a persistence mode or `move_first` without a cookie; a stats page with both or neither of
/// `password_hash` and `password_file`; a cache `disk` bound without its `dir`; a VRRP instance without
/// interface or router id, or an `auth_pass` with VRRPv3; a duration without a unit, or a number where a word is
/// expected (`balance`, `plain_http`).
///
/// The rest goes through the very validation the TOML file does, so it gives the very same errors: a site is
/// written as TOML (`toToml`, omitted settings left out so their defaults and inheritance apply) and read by
/// `Config.parseText`. Error lines and columns point into `toToml`'s text.
module ConfigDsl =

    /// One `key = value` of the site, in the table at `Table` (a dotted path).
    type Setting =
        { Table: string list
          Key: string
          Value: TomlValue }

    /// What an item writes: a key, one element of an array that items of one block build together (`servers`,
    /// `virtual_ips`), or a table that exists even if nothing is written in it (`[apps.NAME]`).
    type Part =
        private
        | Set of Setting
        | Append of table: string list * key: string * value: TomlValue
        | Open of table: string list

    /// An item at the top of a site: node, listeners, TLS, defaults, error pages, stats, log, VRRP, an app.
    type SiteItem = private SiteItem of Part list

    /// An item inside `app "NAME" { ... }` other than a server: `balance`, `cache`.
    type AppItem = private AppItem of Part list

    /// `persistence` or `health`: at the top of a site every app inherits it; inside an app it overrides the
    /// inherited settings (health key by key, persistence as a whole).
    type SharedItem = private SharedItem of Part list

    /// An item inside `health { ... }`.
    type HealthItem = private HealthItem of string * TomlValue

    /// An item inside `stats (password) { ... }`.
    type StatsItem = private StatsItem of string * TomlValue

    /// An item inside `vrrp "eth0" 51 { ... }`.
    type VrrpItem = private VrrpItem of Part

    /// A whole site, ready to be written as TOML (`toToml`) or loaded (`parse`).
    type Site = private { Parts: Part list }

    /// `server NAME ADDRESS` with its optional keys; `weight`, `cookieValue` and `serverMaxConn` set them.
    type ServerSpec =
        { ServerName: string
          ServerAddress: string
          ServerWeight: int option
          ServerCookie: string option
          ServerMaxConn: int option }

    /// The status of the http→https and `/app`→`/app/` redirects (`[listen] redirect_status`).
    type RedirectStatus =
        /// 301
        | MovedPermanently
        /// 302, the default (Apache's `[R]`).
        | Found
        /// 303
        | SeeOther
        /// 307
        | TemporaryRedirect
        /// 308
        | PermanentRedirect

    /// A persistence cookie (`[persistence]`): its name, how it names servers, and whether the backend sees it.
    type CookieSpec =
        { CookieName: string
          CookieMode: CookieValueMode
          CookieMovedFirst: bool }

    /// The PEM files of the https listener, relative to the site's base folder.
    type TlsFiles =
        { CertFile: string
          KeyFile: string
          ChainFile: string option }

    /// The stats password: exactly one of `password_hash` and `password_file`.
    type StatsPassword =
        /// What `lb hash-password` prints.
        | Hash of string
        /// A file holding that line, relative to the site's base folder.
        | HashFile of string

    /// `[vrrp] version`, with `auth_pass` only where RFC 3768 §5.3.6 has it (VRRPv2).
    type VrrpVersion =
        /// RFC 5798, the default.
        | V3
        | V2
        /// VRRPv2 with keepalived's `auth_pass` (at most 8 characters).
        | V2WithPassword of string

    /// A rule's `when`, as written in the DSL: checked when the site is loaded, exactly as its TOML form
    /// (`RulesSection.parseCondition`). `a &&& b` is `All [a; b]`, `a ||| b` is `Any [a; b]`.
    type When =
        /// No condition: every request.
        | Always
        | PathPrefix of string
        | PathSegment of string
        | PathRegex of string
        | Host of string
        | Method of string list
        | HeaderPresent of name: string
        | HeaderEquals of name: string * value: string
        | HeaderRegex of name: string * regex: string
        | CookiePresent of name: string
        | CookieEquals of name: string * value: string
        | CookieRegex of name: string * regex: string
        /// Client address in one of these networks (`"10.0.0.0/8"`).
        | Source of string list
        | All of When list
        | Any of When list
        | Not of When

        static member (&&&)(a: When, b: When) = All [ a; b ]
        static member (|||)(a: When, b: When) = Any [ a; b ]

    /// One change of a rule that lets the request through.
    type ForwardItem =
        /// To another app whatever the path (global rules only).
        | Route of app: string
        /// Only these servers of the app.
        | Pin of servers: string list
        | SetRequestHeader of name: string * value: string
        | AddRequestHeader of name: string * value: string
        | RemoveRequestHeader of name: string
        | SetResponseHeader of name: string * value: string
        | AddResponseHeader of name: string * value: string
        | RemoveResponseHeader of name: string

    /// A rule's `then`: a deny or a redirect is the whole answer (nothing else can be added to it).
    type Then =
        | Deny of status: int
        | Redirect of RedirectStatus * location: string
        /// Through unchanged: the rules after this one are not read.
        | Allow
        | Forward of ForwardItem list

    /// `rule when then`: in `site { ... }` a global rule, in `app "NAME" { ... }` one of the app's.
    type RuleItem = private RuleItem of TomlValue

    // ---- Building blocks --------------------------------------------------------------------------

    let private str (s: string) = TomlValue.String s
    let private integer (i: int) = TomlValue.Integer(int64 i)
    let private at table key value = Set { Table = table; Key = key; Value = value }
    let private siteKey table key value = SiteItem [ at table key value ]
    /// A setting of a top-level table, named and written as its keyword says.
    let private siteSetting (k: Keyword<'T>) (value: 'T) = siteKey [ k.Section ] k.Name (k.Render value)

    let private under (prefix: string list) (part: Part) =
        match part with
        | Set s -> Set { s with Table = prefix @ s.Table }
        | Append(table, key, value) -> Append(prefix @ table, key, value)
        | Open table -> Open(prefix @ table)

    /// The keys of one block: elements of each appended array joined at the place of the first.
    let private collect (parts: Part list) : Part list =
        let arrays =
            parts
            |> List.choose (function
                | Append(table, key, value) -> Some((table, key), value)
                | _ -> None)
            |> List.groupBy fst
            |> List.map (fun (k, vs) -> k, TomlValue.Array(List.map snd vs))
            |> Map.ofList
        parts
        |> List.fold
            (fun (seen: Set<string list * string>, acc) part ->
                match part with
                | Append(table, key, _) when seen.Contains((table, key)) -> seen, acc
                | Append(table, key, _) -> seen.Add((table, key)), at table key arrays[(table, key)] :: acc
                | other -> seen, other :: acc)
            (Set.empty, [])
        |> snd
        |> List.rev

    let private statusCode (status: RedirectStatus) =
        match status with
        | MovedPermanently -> 301
        | Found -> 302
        | SeeOther -> 303
        | TemporaryRedirect -> 307
        | PermanentRedirect -> 308

    /// `TimeSpan.FromSeconds`, for durations that read like config: `seconds 5`.
    let seconds (n: int) = TimeSpan.FromSeconds(float n)
    /// `millis 250`.
    let millis (n: int) = TimeSpan.FromMilliseconds(float n)
    /// `minutes 1`.
    let minutes (n: int) = TimeSpan.FromMinutes(float n)
    /// `hours 1`.
    let hours (n: int) = TimeSpan.FromHours(float n)

    // ---- Site items -------------------------------------------------------------------------------

    /// `[node] name`: this load balancer's name in logs and stats (default `Keywords.Node.name`).
    let node (name: string) = siteSetting Keywords.Node.name name
    /// `[node] reload_on_change` (default off): reload when the config file is saved.
    let reloadOnChange (on: bool) = siteSetting Keywords.Node.reloadOnChange on
    /// `[node] warm_up` (default off): drive a private copy of the request path this long before listening.
    let warmUp (d: TimeSpan) = siteSetting Keywords.Node.warmUp d

    /// `[listen] http`: the plain-HTTP listener, redirecting to https (Apache's port-80 vhost).
    let http (address: string) = siteKey [ Keywords.Listen.Table ] Keywords.Listen.http.Name (str address)

    /// `[listen] http` with `plain_http = "proxy"`: plain HTTP proxied like https (TLS ends in front of lb).
    let httpProxied (address: string) =
        SiteItem
            [ at [ Keywords.Listen.Table ] Keywords.Listen.http.Name (str address)
              at [ Keywords.Listen.Table ] Keywords.Listen.plainHttp.Name (Keywords.Listen.plainHttp.Render PlainHttpMode.Proxy) ]

    /// PEM certificate and key, relative to the site's base folder; `{ tls c k with ChainFile = Some f }` adds a chain.
    let tls (cert: string) (key: string) = { CertFile = cert; KeyFile = key; ChainFile = None }

    /// `[listen] https` with its `[tls]` files: an https listener cannot be written without them.
    let https (address: string) (files: TlsFiles) =
        SiteItem
            [ at [ Keywords.Listen.Table ] Keywords.Listen.https.Name (str address)
              at [ Keywords.Tls.Table ] Keywords.Tls.cert.Name (str files.CertFile)
              at [ Keywords.Tls.Table ] Keywords.Tls.key.Name (str files.KeyFile)
              yield! files.ChainFile |> Option.map (fun c -> at [ Keywords.Tls.Table ] Keywords.Tls.chain.Name (str c)) |> Option.toList ]

    /// `[listen] redirect_status` (default `Found`: `Keywords.Listen.redirectStatus`).
    let redirectStatus (status: RedirectStatus) = siteSetting Keywords.Listen.redirectStatus (statusCode status)

    // [defaults]: names, values and defaults as `Keywords.Defaults` has them.

    /// `[defaults] retries`.
    let retries (n: int) = siteSetting Keywords.Defaults.retries n
    /// `[defaults] redispatch`.
    let redispatch (on: bool) = siteSetting Keywords.Defaults.redispatch on
    /// `[defaults] timeout_connect`.
    let timeoutConnect (d: TimeSpan) = siteSetting Keywords.Defaults.timeoutConnect d
    /// `[defaults] timeout_client`.
    let timeoutClient (d: TimeSpan) = siteSetting Keywords.Defaults.timeoutClient d
    /// `[defaults] timeout_server`.
    let timeoutServer (d: TimeSpan) = siteSetting Keywords.Defaults.timeoutServer d
    /// `[defaults] maxconn`: requests in flight across lb.
    let maxConn (n: int) = siteSetting Keywords.Defaults.maxConn n
    /// `[defaults] timeout_queue`.
    let timeoutQueue (d: TimeSpan) = siteSetting Keywords.Defaults.timeoutQueue d
    /// `[defaults] retry_on_timeout`.
    let retryOnTimeout (on: bool) = siteSetting Keywords.Defaults.retryOnTimeout on
    /// `[defaults] timeout_shutdown`.
    let timeoutShutdown (d: TimeSpan) = siteSetting Keywords.Defaults.timeoutShutdown d
    /// `[defaults] encoded_slashes` (Apache `AllowEncodedSlashes`).
    let encodedSlashes (mode: EncodedSlashes) = siteSetting Keywords.Defaults.encodedSlashes mode

    /// `[errors] STATUS = "FILE"`: a page file (relative to the site's base folder) replacing a built-in page.
    let errorPage (status: int) (file: string) = siteKey [ "errors" ] (string status) (str file)

    /// `[log] access = "stdout"` (the default).
    let accessLogStdout = siteSetting Keywords.Log.access AccessLogTarget.Stdout
    /// `[log] access = "off"`.
    let accessLogOff = siteSetting Keywords.Log.access AccessLogTarget.Off
    /// `[log] access = "FILE"`: appended to, relative to the site's base folder.
    let accessLogFile (file: string) = siteSetting Keywords.Log.access (AccessLogTarget.File file)

    /// `kilobytes 512`: a size in bytes (K = 1024, as config reads `"512KB"`).
    let kilobytes (n: int) = int64 n <<< 10
    /// `megabytes 256`.
    let megabytes (n: int) = int64 n <<< 20
    /// `gigabytes 1`.
    let gigabytes (n: int) = int64 n <<< 30

    /// `[defaults] max_request_body`: the largest request body of an app that sets none.
    let maxRequestBody (bytes: int64) = siteSetting Keywords.Defaults.maxRequestBody bytes
    /// `[defaults] max_request_headers`: the most bytes of request header fields.
    let maxRequestHeaders (bytes: int64) = siteSetting Keywords.Defaults.maxRequestHeaders bytes

    /// `[cache] memory`: the memory store's bound (default: `Keywords.Cache.memory`).
    let cacheMemory (bytes: int64) = siteSetting Keywords.Cache.memory bytes
    /// `[cache] max_entry`: the largest body stored (default: `Keywords.Cache.maxEntry`).
    let cacheMaxEntry (bytes: int64) = siteSetting Keywords.Cache.maxEntry bytes
    /// `[cache] dir` and `disk`: a disk store in a folder (relative to the site's base folder) with its bound; the
    /// bound cannot be written without the folder.
    let cacheOnDisk (dir: string) (bytes: int64) =
        SiteItem [ at [ Keywords.Cache.Table ] Keywords.Cache.dir.Name (str dir); at [ Keywords.Cache.Table ] Keywords.Cache.disk.Name (Keywords.Cache.disk.Render bytes) ]
    /// `[cache] x_cache_header` (default on).
    let xCacheHeader (on: bool) = siteSetting Keywords.Cache.xCacheHeader on

    // ---- Persistence and health -------------------------------------------------------------------

    /// A persistence cookie naming the server (its `cookieValue`, else its name), hidden from the backend.
    let cookie (name: string) = { CookieName = name; CookieMode = CookieValueMode.Named; CookieMovedFirst = false }
    /// A persistence cookie holding a digest that names no server (`mode = "opaque"`).
    let opaqueCookie (name: string) = { cookie name with CookieMode = CookieValueMode.Opaque }
    /// The backend receives the persistence cookie, moved first (`move_first = true`, the seed's workaround).
    let movedFirst (spec: CookieSpec) = { spec with CookieMovedFirst = true }

    let private persistenceSetting (k: Keyword<'T>) (value: 'T) = at [ k.Section ] k.Name (k.Render value)

    /// `persistence`: the cookie, its mode and `move_first`, all three written.
    let persistence (spec: CookieSpec) =
        SharedItem
            [ persistenceSetting Keywords.Persistence.cookie (Some spec.CookieName)
              persistenceSetting Keywords.Persistence.mode spec.CookieMode
              persistenceSetting Keywords.Persistence.moveFirst spec.CookieMovedFirst ]

    /// `persistence.cookie = ""`: no persistence cookie, every request is balanced.
    let noPersistence = SharedItem [ persistenceSetting Keywords.Persistence.cookie None ]

    // health { ... }: names, values and defaults as `Keywords.Health` has them.
    let private healthSetting (k: Keyword<'T>) (value: 'T) = HealthItem(k.Name, k.Render value)

    /// `health.enabled` (false counts every server up).
    let checksEnabled (on: bool) = healthSetting Keywords.Health.enabled on
    /// `health.method`.
    let checkMethod (m: string) = healthSetting Keywords.Health.method m
    /// `health.path`.
    let checkPath (p: string) = healthSetting Keywords.Health.path p
    /// `health.host`: the Host header of checks (default: the server's address).
    let checkHost (h: string) = HealthItem(Keywords.Health.host.Name, str h)
    /// `health.expect`: statuses that pass, like "200-399" or "2xx,404" (checked when the site is loaded).
    let expect (spec: string) = HealthItem(Keywords.Health.expect.Name, str spec)
    /// `health.interval`.
    let checkInterval (d: TimeSpan) = healthSetting Keywords.Health.interval d
    /// `health.timeout` (capped at the interval when not written).
    let checkTimeout (d: TimeSpan) = healthSetting Keywords.Health.timeout d
    /// `health.rise`.
    let rise (n: int) = healthSetting Keywords.Health.rise n
    /// `health.fall`.
    let fall (n: int) = healthSetting Keywords.Health.fall n
    /// `health.spread`: percent of jitter.
    let spread (percent: int) = healthSetting Keywords.Health.spread percent
    /// `health.user_agent`.
    let checkUserAgent (ua: string) = healthSetting Keywords.Health.userAgent ua

    // ---- Stats ------------------------------------------------------------------------------------

    // stats (password) { ... }: names and defaults as `Keywords.Stats` has them.
    let private statsSetting (k: Keyword<'T>) (value: 'T) = StatsItem(k.Name, k.Render value)

    /// `[stats] listen` (checked when the site is loaded).
    let statsListen (address: string) = StatsItem(Keywords.Stats.listen.Name, str address)
    /// `[stats] realm`.
    let realm (r: string) = statsSetting Keywords.Stats.realm r
    /// `[stats] user`.
    let user (u: string) = statsSetting Keywords.Stats.user u
    /// `[stats] refresh`.
    let refresh (d: TimeSpan) = statsSetting Keywords.Stats.refresh d
    /// `[stats] pinned_window`.
    let pinnedWindow (d: TimeSpan) = statsSetting Keywords.Stats.pinnedWindow d

    // ---- VRRP -------------------------------------------------------------------------------------

    // vrrp "eth0" 51 { ... }: names and defaults as `Keywords.Vrrp` has them.
    let private vrrpSetting (k: Keyword<'T>) (value: 'T) = VrrpItem(at [] k.Name (k.Render value))

    /// `priority`.
    let priority (p: int) = vrrpSetting Keywords.Vrrp.priority p
    /// `advert_int`.
    let advertInterval (d: TimeSpan) = vrrpSetting Keywords.Vrrp.advertInterval d
    /// `version`, and `auth_pass` with VRRPv2.
    let version (v: VrrpVersion) =
        match v with
        | V3 -> vrrpSetting Keywords.Vrrp.version 3
        | V2 -> vrrpSetting Keywords.Vrrp.version 2
        | V2WithPassword p -> VrrpItem(Append([], "__v2", str p))
    /// One of `virtual_ips` (repeat it for more): `192.0.2.100/24`.
    let virtualIp (ip: string) = VrrpItem(Append([], Keywords.Vrrp.virtualIps.Name, str ip))
    /// `preempt`.
    let preempt (on: bool) = vrrpSetting Keywords.Vrrp.preempt on
    /// `preempt_delay` (zero: none).
    let preemptDelay (d: TimeSpan) = vrrpSetting Keywords.Vrrp.preemptDelay d
    /// `garp_master_delay` (zero: none).
    let garpMasterDelay (d: TimeSpan) = vrrpSetting Keywords.Vrrp.garpMasterDelay d
    /// `garp_master_repeat`.
    let garpMasterRepeat (n: int) = vrrpSetting Keywords.Vrrp.garpMasterRepeat n
    /// `garp_master_refresh` (zero: off).
    let garpMasterRefresh (d: TimeSpan) = vrrpSetting Keywords.Vrrp.garpMasterRefresh d
    /// One of `unicast_peers`.
    let unicastPeer (ip: string) = VrrpItem(Append([], Keywords.Vrrp.unicastPeers.Name, str ip))
    /// One of `track_interfaces`.
    let trackInterface (name: string) = VrrpItem(Append([], Keywords.Vrrp.trackInterfaces.Name, str name))
    /// `track_self = { weight = W }`.
    let trackSelf (weight: int) = vrrpSetting Keywords.Vrrp.trackSelf (Some weight)
    /// `track_self = false`.
    let noTrackSelf = vrrpSetting Keywords.Vrrp.trackSelf None
    /// A track script with keepalived's defaults (`Keywords.TrackScript`);
    /// change them with `{ script "/bin/check" with Weight = 2 }`.
    let script (command: string) : TrackScriptConfig =
        { Command = command
          Interval = Keywords.TrackScript.interval.Default
          Weight = Keywords.TrackScript.weight.Default
          Rise = Keywords.TrackScript.rise.Default
          Fall = Keywords.TrackScript.fall.Default }
    /// One `[[vrrp.track_script]]`.
    let trackScript (s: TrackScriptConfig) = VrrpItem(Append([], Keywords.Vrrp.trackScript.Name, TomlRender.trackScript s))

    // ---- Apps -------------------------------------------------------------------------------------

    /// `{ name = NAME, address = ADDRESS }` in the app's `servers`.
    let server (name: string) (address: string) =
        { ServerName = name; ServerAddress = address; ServerWeight = None; ServerCookie = None; ServerMaxConn = None }

    /// A server's `weight` (default: `Keywords.Server.weight`).
    let weight (w: int) (s: ServerSpec) = { s with ServerWeight = Some w }
    /// A server's `cookie`: its persistence value (default: its name; refused with an opaque cookie).
    let cookieValue (value: string) (s: ServerSpec) = { s with ServerCookie = Some value }
    /// A server's `maxconn` (default: only the global limit).
    let serverMaxConn (n: int) (s: ServerSpec) = { s with ServerMaxConn = Some n }

    let private serverPart (s: ServerSpec) =
        Append(
            [],
            Keywords.App.servers.Name,
            TomlValue.Table
                [ Keywords.Server.name.Name, str s.ServerName
                  Keywords.Server.address.Name, str s.ServerAddress
                  yield! s.ServerWeight |> Option.map (fun w -> Keywords.Server.weight.Name, integer w) |> Option.toList
                  yield! s.ServerCookie |> Option.map (fun c -> Keywords.Server.cookie.Name, str c) |> Option.toList
                  yield! s.ServerMaxConn |> Option.map (fun m -> Keywords.Server.maxConn.Name, integer m) |> Option.toList ]
        )

    /// `balance` (default `RoundRobin`).
    let balance (algorithm: BalanceAlgorithm) = AppItem [ at [] Keywords.App.balance.Name (Keywords.App.balance.Render algorithm) ]

    /// `cache`: the app's GET/HEAD responses go through the shared cache (default off).
    let cache (on: bool) = AppItem [ at [] Keywords.App.cache.Name (Keywords.App.cache.Render on) ]

    /// `max_request_body`: this app's request body limit, over `[defaults] max_request_body`.
    let appMaxRequestBody (bytes: int64) = AppItem [ at [] Keywords.App.maxRequestBody.Name (TomlValue.String(ConfigReading.formatSize bytes)) ]

    // ---- Rules ------------------------------------------------------------------------------------

    let rec private whenTable (w: When) : TomlValue =
        let one key value = TomlValue.Table [ key, value ]
        let test kind name (extra: (string * TomlValue) list) = one kind (TomlValue.Table(("name", str name) :: extra))
        match w with
        | Always -> TomlValue.Table []
        | PathPrefix p -> one "path_prefix" (str p)
        | PathSegment p -> one "path_segment" (str p)
        | PathRegex r -> one "path_regex" (str r)
        | Host h -> one "host" (str h)
        | Method ms -> one "method" (TomlValue.Array(ms |> List.map str))
        | HeaderPresent n -> test "header" n []
        | HeaderEquals(n, v) -> test "header" n [ "equals", str v ]
        | HeaderRegex(n, r) -> test "header" n [ "regex", str r ]
        | CookiePresent n -> test "cookie" n []
        | CookieEquals(n, v) -> test "cookie" n [ "equals", str v ]
        | CookieRegex(n, r) -> test "cookie" n [ "regex", str r ]
        | Source ns -> one "source" (TomlValue.Array(ns |> List.map str))
        | All ws -> one "all" (TomlValue.Array(ws |> List.map whenTable))
        | Any ws -> one "any" (TomlValue.Array(ws |> List.map whenTable))
        | Not w -> one "not" (whenTable w)

    let private thenTable (t: Then) : TomlValue =
        match t with
        | Deny status -> TomlValue.Table [ "deny", integer status ]
        | Redirect(status, location) -> TomlValue.Table [ "redirect", integer (statusCode status); "location", str location ]
        | Allow -> TomlValue.Table [ "allow", TomlValue.Boolean true ]
        | Forward items ->
            let table key pick =
                match items |> List.choose pick with
                | [] -> []
                | pairs -> [ key, TomlValue.Table(pairs |> List.map (fun (n, v) -> n, str v)) ]
            let array key pick =
                match items |> List.collect pick with
                | [] -> []
                | names -> [ key, TomlValue.Array(names |> List.map str) ]
            TomlValue.Table
                [ for item in items do
                      match item with
                      | Route app -> "route", str app
                      | _ -> ()
                  yield! array "pin" (function Pin ss -> ss | _ -> [])
                  yield! table "set_request_header" (function SetRequestHeader(n, v) -> Some(n, v) | _ -> None)
                  yield! table "add_request_header" (function AddRequestHeader(n, v) -> Some(n, v) | _ -> None)
                  yield! array "remove_request_header" (function RemoveRequestHeader n -> [ n ] | _ -> [])
                  yield! table "set_response_header" (function SetResponseHeader(n, v) -> Some(n, v) | _ -> None)
                  yield! table "add_response_header" (function AddResponseHeader(n, v) -> Some(n, v) | _ -> None)
                  yield! array "remove_response_header" (function RemoveResponseHeader n -> [ n ] | _ -> []) ]

    /// `rule when then`: `[[rules]]` in a site, `[[apps.NAME.rules]]` in an app, read in the order written; the first
    /// that matches decides.
    let rule (condition: When) (action: Then) =
        RuleItem(TomlValue.Table [ "when", whenTable condition; "then", thenTable action ])

    // ---- Builders ---------------------------------------------------------------------------------

    /// The block of a computation expression: items in the order written, `if` and `for` allowed.
    type BlockBuilder() =
        member _.Combine(a: Part list, b: Part list) = a @ b
        member _.Delay(f: unit -> Part list) = f ()
        member _.Zero() : Part list = []
        member _.For(items: 'T seq, body: 'T -> Part list) = items |> Seq.collect body |> List.ofSeq

    /// `app "NAME" { ... }`: `[apps.NAME]` with its servers, balance, persistence and health.
    type AppBuilder(name: string) =
        inherit BlockBuilder()
        member _.Yield(s: ServerSpec) = [ serverPart s ]
        member _.Yield(AppItem parts) = parts
        member _.Yield(SharedItem parts) = parts
        member _.Yield(RuleItem table) = [ Append([], "rules", table) ]
        member _.Run(parts: Part list) = SiteItem(Open [] :: collect parts |> List.map (under [ "apps"; name ]))

    /// `health { ... }`: the health check settings, as a whole site's or one app's.
    type HealthBuilder() =
        inherit BlockBuilder()
        member _.Yield(HealthItem(key, value)) = [ at [ Keywords.Health.Table ] key value ]
        member _.Run(parts: Part list) = SharedItem(Open [ Keywords.Health.Table ] :: parts)

    /// `stats (Hash "...") { ... }`: the stats listener.
    type StatsBuilder(password: StatsPassword) =
        inherit BlockBuilder()
        member _.Yield(StatsItem(key, value)) = [ at [ Keywords.Stats.Table ] key value ]
        member _.Yield(()) : Part list = []
        member _.Run(parts: Part list) =
            let passwordKey =
                match password with
                | Hash h -> at [ Keywords.Stats.Table ] Keywords.Stats.passwordHash.Name (str h)
                | HashFile f -> at [ Keywords.Stats.Table ] Keywords.Stats.passwordFile.Name (str f)
            SiteItem(Open [ Keywords.Stats.Table ] :: parts @ [ passwordKey ])

    /// `vrrp "eth0" 51 { ... }`: the `[vrrp]` instance on an interface with its virtual router id.
    type VrrpBuilder(iface: string, routerId: int) =
        inherit BlockBuilder()
        member _.Yield(VrrpItem part) = [ part ]
        member _.Run(parts: Part list) =
            let parts =
                parts
                |> List.collect (function
                    | Append(_, "__v2", password) -> [ at [] Keywords.Vrrp.version.Name (integer 2); at [] Keywords.Vrrp.authPass.Name password ]
                    | other -> [ other ])
            SiteItem(at [] Keywords.Vrrp.iface.Name (str iface) :: at [] Keywords.Vrrp.virtualRouterId.Name (integer routerId) :: collect parts |> List.map (under [ Keywords.Vrrp.Table ]))

    /// `site { ... }`: a whole site.
    type SiteBuilder() =
        inherit BlockBuilder()
        member _.Yield(SiteItem parts) = parts
        member _.Yield(SharedItem parts) = parts
        member _.Yield(RuleItem table) = [ Append([], "rules", table) ]
        member _.Run(parts: Part list) : Site = { Parts = collect parts }

    /// Begins a site.
    let site = SiteBuilder()

    /// Begins an app reached as `/NAME/`.
    let app (name: string) = AppBuilder name

    /// Begins health check settings.
    let health = HealthBuilder()

    /// Begins the stats listener with its password.
    let stats (password: StatsPassword) = StatsBuilder password

    /// Begins a VRRP instance.
    let vrrp (iface: string) (virtualRouterId: int) = VrrpBuilder(iface, virtualRouterId)

    // ---- Reading a site ---------------------------------------------------------------------------

    /// The TOML document of a site: one section per table, in the order first written.
    let document (s: Site) : TomlSection list =
        let tables =
            s.Parts
            |> List.map (function
                | Set setting -> setting.Table
                | Append(table, _, _) -> table
                | Open table -> table)
            |> List.distinct
            // Keys of the root table (global rules) come before the first [section].
            |> List.sortBy (fun table -> not table.IsEmpty)
        [ for table in tables ->
              { Path = table
                Comments = []
                Lines =
                  [ for part in s.Parts do
                        match part with
                        | Set setting when setting.Table = table -> TomlLine.Key(setting.Key, setting.Value, None)
                        | _ -> () ] } ]

    /// The site as TOML text: what `parse` reads, and where its errors point.
    [<CompiledName("ToToml")>]
    let toToml (s: Site) : string = TomlRender.print (document s)

    /// Loads a site as `Config.parseTextWith` loads a file: `baseDir` resolves relative paths, `io` checks files.
    let parseWith (io: ConfigIo) (baseDir: string) (s: Site) : Result<LbConfig, ConfigError list> =
        Config.parseTextWith io (toToml s) baseDir

    /// Loads a site as `Config.parseText` loads a file: every error the TOML form of the site would give.
    let parse (baseDir: string) (fileExists: string -> bool) (s: Site) : Result<LbConfig, ConfigError list> =
        Config.parseText (toToml s) baseDir fileExists
