namespace Lb.Rules

open System
open System.Globalization
open System.Text

/// A TOML value as lb writes it: the subset of TOML 1.0 its config uses.
[<RequireQualifiedAccess>]
type TomlValue =
    | String of string
    | Integer of int64
    | Boolean of bool
    | Array of TomlValue list
    /// An inline table `{ key = value, ... }` (TOML 1.0 §Inline Table: one line, no comments inside).
    | Table of (string * TomlValue) list

/// One line of a section: `key = value  # comment`, or a comment line on its own.
[<RequireQualifiedAccess>]
type TomlLine =
    | Key of key: string * value: TomlValue * comment: string option
    | Note of string

/// A `[section]`: its dotted path (empty: the root table), comment lines above it, and its lines in order.
type TomlSection =
    { Path: string list
      Comments: string list
      Lines: TomlLine list }

/// Writing TOML text: `print` for any document, `render` for a whole `LbConfig`.
///
/// `render` writes the effective configuration: every key that has a value, defaults included and marked
/// `# default`, file paths as `Config` resolved them. The global `[persistence]` and `[health]` tables hold
/// the settings most apps share and each app writes only the keys where it differs, so reading the text back
/// exercises the same key-by-key inheritance a hand-written file does. `Config.parseText (render c)` gives
/// back `c` for every valid config (the round-trip property in RenderTests).
[<RequireQualifiedAccess>]
module TomlRender =

    // ---- TOML text --------------------------------------------------------------------------------

    /// A TOML basic string: `"` and `\` escaped, every control character as an escape (TOML 1.0 §String:
    /// "any Unicode character may be used except those that must be escaped: quotation mark, backslash, and
    /// the control characters other than tab"). Tab is escaped too, so the text stays visible.
    let quote (s: string) =
        let b = StringBuilder(s.Length + 2)
        b.Append '"' |> ignore
        for c in s do
            match c with
            | '"' -> b.Append "\\\"" |> ignore
            | '\\' -> b.Append "\\\\" |> ignore
            | '\b' -> b.Append "\\b" |> ignore
            | '\t' -> b.Append "\\t" |> ignore
            | '\n' -> b.Append "\\n" |> ignore
            | '\f' -> b.Append "\\f" |> ignore
            | '\r' -> b.Append "\\r" |> ignore
            | c when c < ' ' || c = '\127' -> b.AppendFormat(CultureInfo.InvariantCulture, "\\u{0:X4}", int c) |> ignore
            | c -> b.Append c |> ignore
        b.Append('"').ToString()

    /// A key bare when TOML 1.0 §Keys allows it (`A-Za-z0-9_-`), quoted otherwise (`"a.b"`, `"x y"`).
    let key (k: string) =
        if k <> "" && k |> Seq.forall (fun c -> Char.IsAsciiLetterOrDigit c || c = '_' || c = '-') then k else quote k

    let rec private inlineValue (value: TomlValue) =
        match value with
        | TomlValue.String s -> quote s
        | TomlValue.Integer i -> i.ToString(CultureInfo.InvariantCulture)
        | TomlValue.Boolean b -> if b then "true" else "false"
        | TomlValue.Array [] -> "[]"
        | TomlValue.Array items -> "[ " + String.Join(", ", items |> List.map inlineValue) + " ]"
        | TomlValue.Table [] -> "{}"
        | TomlValue.Table keys -> "{ " + String.Join(", ", keys |> List.map (fun (k, v) -> key k + " = " + inlineValue v)) + " }"

    /// A value as it follows `key = `: an array of tables takes one line per table, anything else one line.
    let value (v: TomlValue) =
        match v with
        | TomlValue.Array items when items |> List.exists (function TomlValue.Table _ -> true | _ -> false) ->
            "[\n" + String.Join("", items |> List.map (fun item -> "  " + inlineValue item + ",\n")) + "]"
        | v -> inlineValue v

    /// The text of a document: sections in order, a blank line between them.
    [<CompiledName("Print")>]
    let print (sections: TomlSection list) : string =
        let b = StringBuilder()
        let line (s: string) = b.Append(s).Append('\n') |> ignore
        for i, section in List.indexed sections do
            if i > 0 then line ""
            for comment in section.Comments do
                line ("# " + comment)
            if not section.Path.IsEmpty then
                line ("[" + String.Join(".", section.Path |> List.map key) + "]")
            for l in section.Lines do
                match l with
                | TomlLine.Key(k, v, None) -> line (key k + " = " + value v)
                | TomlLine.Key(k, v, Some comment) -> line (key k + " = " + value v + "  # " + comment)
                | TomlLine.Note note -> line ("# " + note)
        b.ToString()

    // ---- Values of the config model ---------------------------------------------------------------

    let private str (s: string) = TomlValue.String s
    let private int (i: int) = TomlValue.Integer(int64 i)
    let private bool (b: bool) = TomlValue.Boolean b
    let private strings (items: string array) = TomlValue.Array [ for s in items -> str s ]

    /// A duration as config reads it (`ConfigReading.formatDuration`: `"10s"`, `"250ms"`).
    let duration (d: TimeSpan) = str (ConfigReading.formatDuration d)

    /// The config word of a plain-HTTP mode.
    let plainHttpWord (mode: PlainHttpMode) =
        match mode with
        | PlainHttpMode.RedirectToHttps -> "redirect"
        | PlainHttpMode.Proxy -> "proxy"

    /// The config word of a persistence mode.
    let modeWord (mode: CookieValueMode) =
        match mode with
        | CookieValueMode.Named -> "named"
        | CookieValueMode.Opaque -> "opaque"

    /// The config word of a balance algorithm.
    let balanceWord (balance: BalanceAlgorithm) =
        match balance with
        | BalanceAlgorithm.RoundRobin -> "roundrobin"
        | BalanceAlgorithm.LeastConn -> "leastconn"
        | BalanceAlgorithm.RandomTwoChoices -> "random"

    /// The config value of an access-log target.
    let accessLogWord (target: AccessLogTarget) =
        match target with
        | AccessLogTarget.Stdout -> "stdout"
        | AccessLogTarget.Off -> "off"
        | AccessLogTarget.File path -> path

    /// A key with its value, marked `# default` when it equals the built-in value.
    let private keyed (k: string) (v: TomlValue) (isDefault: bool) =
        TomlLine.Key(k, v, (if isDefault then Some "default" else None))

    let private keyOf line =
        match line with
        | TomlLine.Key(k, v, _) -> Some(k, v)
        | TomlLine.Note _ -> None

    // ---- Sections ---------------------------------------------------------------------------------

    let private nodeSection (node: NodeConfig) =
        { Path = [ "node" ]; Comments = []; Lines =
            [ keyed "name" (str node.Name) (node.Name = "lb")
              keyed "reload_on_change" (bool node.ReloadOnChange) (not node.ReloadOnChange)
              keyed "warm_up" (duration node.WarmUp) (node.WarmUp = TimeSpan.Zero) ] }

    let private listenSection (listen: ListenConfig) =
        { Path = [ "listen" ]
          Comments = []
          Lines =
            [ yield! listen.Http |> Option.map (fun e -> keyed "http" (str (string e)) false) |> Option.toList
              yield! listen.Https |> Option.map (fun e -> keyed "https" (str (string e)) false) |> Option.toList
              keyed "plain_http" (str (plainHttpWord listen.PlainHttp)) (listen.PlainHttp = PlainHttpMode.RedirectToHttps)
              keyed "redirect_status" (int listen.RedirectStatus) (listen.RedirectStatus = 302) ] }

    let private tlsSection (tls: TlsConfig) =
        { Path = [ "tls" ]
          Comments = []
          Lines =
            [ keyed "cert" (str tls.Cert) false
              keyed "key" (str tls.Key) false
              match tls.Chain with
              | Some chain -> keyed "chain" (str chain) false
              | None -> TomlLine.Note "chain: none (default)" ] }

    let private defaultsSection (d: DefaultsConfig) =
        let x = Config.defaultDefaults
        { Path = [ "defaults" ]
          Comments = []
          Lines =
            [ keyed "retries" (int d.Retries) (d.Retries = x.Retries)
              keyed "redispatch" (bool d.Redispatch) (d.Redispatch = x.Redispatch)
              keyed "timeout_connect" (duration d.TimeoutConnect) (d.TimeoutConnect = x.TimeoutConnect)
              keyed "timeout_client" (duration d.TimeoutClient) (d.TimeoutClient = x.TimeoutClient)
              keyed "timeout_server" (duration d.TimeoutServer) (d.TimeoutServer = x.TimeoutServer)
              keyed "maxconn" (int d.MaxConn) (d.MaxConn = x.MaxConn)
              keyed "timeout_queue" (duration d.TimeoutQueue) (d.TimeoutQueue = x.TimeoutQueue)
              keyed "retry_on_timeout" (bool d.RetryOnTimeout) (d.RetryOnTimeout = x.RetryOnTimeout)
              keyed "timeout_shutdown" (duration d.TimeoutShutdown) (d.TimeoutShutdown = x.TimeoutShutdown)
              keyed "max_request_body" (str (Config.formatSize d.MaxRequestBody)) (d.MaxRequestBody = x.MaxRequestBody)
              keyed "max_request_headers" (str (Config.formatSize d.MaxRequestHeaders)) (d.MaxRequestHeaders = x.MaxRequestHeaders) ] }

    let private persistenceLines (p: PersistenceConfig) =
        let x = Config.defaultPersistence
        [ keyed "cookie" (str (defaultArg p.Cookie "")) (p.Cookie = x.Cookie)
          keyed "mode" (str (modeWord p.Mode)) (p.Mode = x.Mode)
          keyed "move_first" (bool p.MoveFirst) (p.MoveFirst = x.MoveFirst) ]

    let private healthLines (h: HealthCheckConfig) =
        let x = Config.defaultHealth
        [ keyed "enabled" (bool h.Enabled) (h.Enabled = x.Enabled)
          keyed "method" (str h.Method) (h.Method = x.Method)
          keyed "path" (str h.Path) (h.Path = x.Path)
          match h.Host with
          | Some host -> keyed "host" (str host) false
          | None -> TomlLine.Note "host: none, checks send each server's address (default)"
          keyed "expect" (str (string h.Expected)) (h.Expected = x.Expected)
          keyed "interval" (duration h.Interval) (h.Interval = x.Interval)
          // Marked only when it is the default itself: a global timeout capped at a short interval is written,
          // as apps with a longer interval inherit it.
          keyed "timeout" (duration h.Timeout) (h.Timeout = Config.DefaultHealthTimeout)
          keyed "rise" (int h.Thresholds.Rise) (h.Thresholds.Rise = x.Thresholds.Rise)
          keyed "fall" (int h.Thresholds.Fall) (h.Thresholds.Fall = x.Thresholds.Fall)
          keyed "spread" (int h.Spread) (h.Spread = x.Spread)
          keyed "user_agent" (str h.UserAgent) (h.UserAgent = x.UserAgent) ]

    let private errorsSection (pages: (int * string) array) =
        { Path = [ "errors" ]
          Comments = []
          Lines = [ for status, path in pages -> keyed (string status) (str path) false ] }

    let private statsSection (s: StatsConfig) =
        { Path = [ "stats" ]
          Comments = []
          Lines =
            [ keyed "listen" (str (string s.Listen)) (s.Listen = Config.DefaultStatsListen)
              keyed "realm" (str s.Realm) (s.Realm = "lb stats")
              keyed "user" (str s.User) (s.User = "admin")
              keyed "password_hash" (str (string s.PasswordHash)) false
              keyed "refresh" (duration s.Refresh) (s.Refresh = TimeSpan.FromSeconds 10.0)
              keyed "pinned_window" (duration s.PinnedWindow) (s.PinnedWindow = TimeSpan.FromMinutes 5.0) ] }

    let private logSection (log: LogConfig) =
        { Path = [ "log" ]
          Comments = []
          Lines = [ keyed "access" (str (accessLogWord log.Access)) (log.Access = Config.defaultLog.Access) ] }

    let private trackScript (t: TrackScriptConfig) =
        TomlValue.Table
            [ "command", str t.Command
              "interval", duration t.Interval
              "weight", int t.Weight
              "rise", int t.Rise
              "fall", int t.Fall ]

    let private vrrpSection (v: VrrpConfig) =
        { Path = [ "vrrp" ]
          Comments = []
          Lines =
            [ keyed "interface" (str v.Interface) false
              keyed "virtual_router_id" (int v.VirtualRouterId) false
              keyed "priority" (int v.Priority) (v.Priority = 100)
              keyed "advert_int" (duration v.AdvertInterval) (v.AdvertInterval = TimeSpan.FromSeconds 1.0)
              keyed "version" (int v.Version) (v.Version = 3)
              keyed "virtual_ips" (strings v.VirtualIps) false
              keyed "preempt" (bool v.Preempt) v.Preempt
              // A zero delay is not a duration config accepts: it is written by leaving the key out.
              if v.PreemptDelay > TimeSpan.Zero then keyed "preempt_delay" (duration v.PreemptDelay) false
              else TomlLine.Note "preempt_delay: none (default)"
              keyed "garp_master_delay" (duration v.GarpMasterDelay) (v.GarpMasterDelay = TimeSpan.FromSeconds 5.0)
              keyed "garp_master_repeat" (int v.GarpMasterRepeat) (v.GarpMasterRepeat = 5)
              if v.GarpMasterRefresh > TimeSpan.Zero then keyed "garp_master_refresh" (duration v.GarpMasterRefresh) false
              else TomlLine.Note "garp_master_refresh: off (default)"
              keyed "unicast_peers" (strings v.UnicastPeers) (v.UnicastPeers.Length = 0)
              keyed "track_interfaces" (strings v.TrackInterfaces) (v.TrackInterfaces.Length = 0)
              match v.TrackSelfWeight with
              | Some w -> keyed "track_self" (TomlValue.Table [ "weight", int w ]) (w = 2)
              | None -> keyed "track_self" (bool false) false
              keyed "track_script" (TomlValue.Array [ for t in v.TrackScripts -> trackScript t ]) (v.TrackScripts.Length = 0)
              match v.AuthPassword with
              | Some p -> keyed "auth_pass" (str p) false
              | None -> () ] }

    let private cacheSection (c: CacheConfig) =
        let x = Config.defaultCache
        let size (bytes: int64) = str (Config.formatSize bytes)
        { Path = [ "cache" ]
          Comments = [ "Used by the apps with `cache = true`." ]
          Lines =
            [ keyed "memory" (size c.MemoryBytes) (c.MemoryBytes = x.MemoryBytes)
              keyed "max_entry" (size c.MaxEntryBytes) (c.MaxEntryBytes = min x.MaxEntryBytes c.MemoryBytes)
              match c.Dir with
              | Some dir ->
                  keyed "dir" (str dir) false
                  keyed "disk" (size c.DiskBytes) (c.DiskBytes = x.DiskBytes)
              // `disk` without `dir` is refused: the disk store is off, its bound is not written.
              | None -> TomlLine.Note "dir: none, entries are kept in memory only (default)"
              keyed "x_cache_header" (bool c.XCacheHeader) (c.XCacheHeader = x.XCacheHeader) ] }

    // ---- Rules ------------------------------------------------------------------------------------

    let private valueTest (name: string) (test: ValueTest) =
        TomlValue.Table
            [ "name", str name
              match test with
              | ValueTest.Present -> ()
              | ValueTest.Equals v -> "equals", str v
              | ValueTest.Matches p -> "regex", str p.Source ]

    /// A `when` table: one key per condition, `all` for several (`Config.parseCondition` reads it back).
    let rec condition (c: Condition) : TomlValue =
        let one key value = TomlValue.Table [ key, value ]
        match c with
        | Condition.Always -> TomlValue.Table []
        | Condition.PathPrefix p -> one "path_prefix" (str p)
        | Condition.PathSegment p -> one "path_segment" (str p)
        | Condition.PathMatches p -> one "path_regex" (str p.Source)
        | Condition.Host h -> one "host" (str h)
        | Condition.Method ms -> one "method" (TomlValue.Array(ms |> List.map str))
        | Condition.Header(n, t) -> one "header" (valueTest n t)
        | Condition.Cookie(n, t) -> one "cookie" (valueTest n t)
        | Condition.Source ns -> one "source" (TomlValue.Array(ns |> List.map (fun n -> str n.Text)))
        | Condition.All cs -> one "all" (TomlValue.Array(cs |> List.map condition))
        | Condition.Any cs -> one "any" (TomlValue.Array(cs |> List.map condition))
        | Condition.Not c -> one "not" (condition c)

    /// A `then` table (`Config.parseAction` reads it back; header edits come back grouped set, add, remove).
    let action (a: RuleAction) : TomlValue =
        match a with
        | RuleAction.Deny status -> TomlValue.Table [ "deny", int status ]
        | RuleAction.Redirect(status, location) -> TomlValue.Table [ "redirect", int status; "location", str location ]
        | RuleAction.Forward f when f.Route.IsNone && f.Pin.IsEmpty && f.RequestHeaders.IsEmpty && f.ResponseHeaders.IsEmpty ->
            TomlValue.Table [ "allow", bool true ]
        | RuleAction.Forward f ->
            let edits direction (list: HeaderEdit list) =
                let sets = list |> List.choose (function HeaderEdit.Set(n, v) -> Some(n, str v) | _ -> None)
                let adds = list |> List.choose (function HeaderEdit.Add(n, v) -> Some(n, str v) | _ -> None)
                let removes = list |> List.choose (function HeaderEdit.Remove n -> Some(str n) | _ -> None)
                [ if not sets.IsEmpty then $"set_{direction}_header", TomlValue.Table sets
                  if not adds.IsEmpty then $"add_{direction}_header", TomlValue.Table adds
                  if not removes.IsEmpty then $"remove_{direction}_header", TomlValue.Array removes ]
            TomlValue.Table
                [ yield! f.Route |> Option.map (fun r -> "route", str r) |> Option.toList
                  if not f.Pin.IsEmpty then "pin", TomlValue.Array(f.Pin |> List.map str)
                  yield! edits "request" f.RequestHeaders
                  yield! edits "response" f.ResponseHeaders ]

    /// A rule list as `rules = [ { when = ..., then = ... }, ... ]`.
    let private rulesLine (rules: Rule array) =
        TomlLine.Key("rules", TomlValue.Array [ for r in rules -> TomlValue.Table [ "when", condition r.When; "then", action r.Then ] ], None)

    /// The value most apps share (the first of equally common ones), or `fallback` when there is no app.
    let private mostCommon (fallback: 'T) (values: 'T array) : 'T =
        if values.Length = 0 then fallback else values |> Array.countBy id |> Array.maxBy snd |> fst

    /// The lines of `mine` whose key or value differs from `inherited`: what an app writes over the global table.
    let private overrides (mine: TomlLine list) (inherited: TomlLine list) =
        let parent = inherited |> List.choose keyOf
        mine |> List.choose keyOf |> List.filter (fun kv -> not (List.contains kv parent))

    let private server (app: AppConfig) (s: ServerConfig) =
        TomlValue.Table
            [ "name", str s.Name
              "address", str (string s.Address)
              "weight", int s.Weight
              // Only a Named value other than the name was configured; Opaque values are always derived.
              if app.Persistence.Mode = CookieValueMode.Named && s.CookieValue <> s.Name then "cookie", str s.CookieValue
              match s.MaxConn with
              | Some m -> "maxconn", int m
              | None -> () ]

    let private appSection (persistence: PersistenceConfig) (health: HealthCheckConfig) (app: AppConfig) =
        { Path = [ "apps"; app.Name ]
          Comments = []
          Lines =
            [ keyed "balance" (str (balanceWord app.Balance)) (app.Balance = BalanceAlgorithm.RoundRobin)
              match overrides (persistenceLines app.Persistence) (persistenceLines persistence) with
              | [] -> ()
              | keys -> TomlLine.Key("persistence", TomlValue.Table keys, Some "over [persistence]")
              match overrides (healthLines app.Health) (healthLines health) with
              | [] -> ()
              | keys -> TomlLine.Key("health", TomlValue.Table keys, Some "over [health]")
              keyed "cache" (bool app.Cache) (not app.Cache)
              match app.MaxRequestBody with
              | Some bytes -> TomlLine.Key("max_request_body", str (Config.formatSize bytes), Some "over [defaults]")
              | None -> ()
              TomlLine.Key("servers", TomlValue.Array [ for s in app.Servers -> server app s ], None)
              if app.Rules.Length > 0 then rulesLine app.Rules ] }

    /// The document of a config; `render` prints it.
    let document (config: LbConfig) : TomlSection list =
        let persistence = config.Apps |> Array.map (fun a -> a.Persistence) |> mostCommon Config.defaultPersistence
        let health =
            let common = config.Apps |> Array.map (fun a -> a.Health) |> mostCommon Config.defaultHealth
            // An app cannot unset an inherited host: the global table has none if any app has none.
            if config.Apps |> Array.exists (fun a -> a.Health.Host.IsNone) then { common with Host = None } else common
        let header =
            [ "lb effective configuration: every setting written out, `# default` marks lb's built-in value."
              "Paths are as lb resolved them. Check it with: lb check -c FILE" ]
        [ if config.Rules.Length > 0 then
              // Keys of the root table come before the first [section].
              { Path = []; Comments = header @ [ "Global rules, read before any app's: the first that matches decides." ]; Lines = [ rulesLine config.Rules ] }
              nodeSection config.Node
          else
              { nodeSection config.Node with Comments = header }
          listenSection config.Listen
          yield! config.Tls |> Option.map tlsSection |> Option.toList
          defaultsSection config.Defaults
          { Path = [ "persistence" ]
            Comments = [ "Every app inherits these; an app's `persistence = { ... }` overrides them key by key." ]
            Lines = persistenceLines persistence }
          { Path = [ "health" ]
            Comments = [ "Every app inherits these; an app's `health = { ... }` overrides them key by key." ]
            Lines = healthLines health }
          if config.ErrorPages.Length > 0 then errorsSection config.ErrorPages
          yield! config.Stats |> Option.map statsSection |> Option.toList
          logSection config.Log
          yield! config.Vrrp |> Option.map vrrpSection |> Option.toList
          cacheSection config.Cache
          for app in config.Apps do
              appSection persistence health app ]

    /// The TOML text of a config, every default written and marked. Rejects nothing: every `LbConfig` renders.
    [<CompiledName("Render")>]
    let render (config: LbConfig) : string = print (document config)
