namespace Lb.Rules

open System
open System.Globalization
open System.Text

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

    /// A key with its value, marked `# default` when it equals the built-in value.
    let private keyed (k: string) (v: TomlValue) (isDefault: bool) =
        TomlLine.Key(k, v, (if isDefault then Some "default" else None))

    /// A keyword's line: its name and value from `Keywords`, marked `# default` when it is the keyword's default.
    let private setting (k: Keyword<'T>) (v: 'T) = keyed k.Name (k.Render v) (v = k.Default)

    let private keyOf line =
        match line with
        | TomlLine.Key(k, v, _) -> Some(k, v)
        | TomlLine.Note _ -> None

    // ---- Sections ---------------------------------------------------------------------------------

    let private nodeSection (node: NodeConfig) =
        { Path = [ Keywords.Node.Table ]; Comments = []; Lines =
            [ setting Keywords.Node.name node.Name
              setting Keywords.Node.reloadOnChange node.ReloadOnChange
              setting Keywords.Node.warmUp node.WarmUp ] }

    let private listenSection (listen: ListenConfig) =
        { Path = [ Keywords.Listen.Table ]
          Comments = []
          Lines =
            [ yield! listen.Http |> Option.map (fun e -> keyed Keywords.Listen.http.Name (str (string e)) false) |> Option.toList
              yield! listen.Https |> Option.map (fun e -> keyed Keywords.Listen.https.Name (str (string e)) false) |> Option.toList
              setting Keywords.Listen.plainHttp listen.PlainHttp
              setting Keywords.Listen.redirectStatus listen.RedirectStatus ] }

    let private tlsSection (tls: TlsConfig) =
        { Path = [ Keywords.Tls.Table ]
          Comments = []
          Lines =
            [ keyed Keywords.Tls.cert.Name (str tls.Cert) false
              keyed Keywords.Tls.key.Name (str tls.Key) false
              match tls.Chain with
              | Some chain -> keyed Keywords.Tls.chain.Name (str chain) false
              | None -> TomlLine.Note "chain: none (default)" ] }

    let private defaultsSection (d: DefaultsConfig) =
        { Path = [ Keywords.Defaults.Table ]
          Comments = []
          Lines =
            [ setting Keywords.Defaults.retries d.Retries
              setting Keywords.Defaults.redispatch d.Redispatch
              setting Keywords.Defaults.timeoutConnect d.TimeoutConnect
              setting Keywords.Defaults.timeoutClient d.TimeoutClient
              setting Keywords.Defaults.timeoutServer d.TimeoutServer
              setting Keywords.Defaults.maxConn d.MaxConn
              setting Keywords.Defaults.timeoutQueue d.TimeoutQueue
              setting Keywords.Defaults.retryOnTimeout d.RetryOnTimeout
              setting Keywords.Defaults.timeoutShutdown d.TimeoutShutdown
              setting Keywords.Defaults.encodedSlashes d.EncodedSlashes
              setting Keywords.Defaults.maxRequestBody d.MaxRequestBody
              setting Keywords.Defaults.maxRequestHeaders d.MaxRequestHeaders ] }

    let private persistenceLines (p: PersistenceConfig) =
        [ setting Keywords.Persistence.cookie p.Cookie
          setting Keywords.Persistence.mode p.Mode
          setting Keywords.Persistence.moveFirst p.MoveFirst ]

    let private healthLines (h: HealthCheckConfig) =
        [ setting Keywords.Health.enabled h.Enabled
          setting Keywords.Health.method h.Method
          setting Keywords.Health.path h.Path
          match h.Host with
          | Some host -> keyed Keywords.Health.host.Name (str host) false
          | None -> TomlLine.Note "host: none, checks send each server's address (default)"
          setting Keywords.Health.expect h.Expected
          setting Keywords.Health.interval h.Interval
          // Marked only when it is the default itself: a global timeout capped at a short interval is written,
          // as apps with a longer interval inherit it.
          setting Keywords.Health.timeout h.Timeout
          setting Keywords.Health.rise h.Thresholds.Rise
          setting Keywords.Health.fall h.Thresholds.Fall
          setting Keywords.Health.spread h.Spread
          setting Keywords.Health.userAgent h.UserAgent ]

    let private errorsSection (pages: (int * string) array) =
        { Path = [ "errors" ]
          Comments = []
          Lines = [ for status, path in pages -> keyed (string status) (str path) false ] }

    let private statsSection (s: StatsConfig) =
        { Path = [ Keywords.Stats.Table ]
          Comments = []
          Lines =
            [ setting Keywords.Stats.listen s.Listen
              setting Keywords.Stats.realm s.Realm
              setting Keywords.Stats.user s.User
              keyed Keywords.Stats.passwordHash.Name (str (string s.PasswordHash)) false
              setting Keywords.Stats.refresh s.Refresh
              setting Keywords.Stats.pinnedWindow s.PinnedWindow ] }

    let private logSection (log: LogConfig) =
        { Path = [ Keywords.Log.Table ]; Comments = []; Lines = [ setting Keywords.Log.access log.Access ] }

    /// A `[[vrrp.track_script]]` table, every key written.
    let trackScript (t: TrackScriptConfig) =
        TomlValue.Table
            [ Keywords.TrackScript.command.Name, str t.Command
              Keywords.TrackScript.interval.Name, Keywords.TrackScript.interval.Render t.Interval
              Keywords.TrackScript.weight.Name, Keywords.TrackScript.weight.Render t.Weight
              Keywords.TrackScript.rise.Name, Keywords.TrackScript.rise.Render t.Rise
              Keywords.TrackScript.fall.Name, Keywords.TrackScript.fall.Render t.Fall ]

    let private vrrpSection (v: VrrpConfig) =
        { Path = [ Keywords.Vrrp.Table ]
          Comments = []
          Lines =
            [ keyed Keywords.Vrrp.iface.Name (str v.Interface) false
              keyed Keywords.Vrrp.virtualRouterId.Name (int v.VirtualRouterId) false
              setting Keywords.Vrrp.priority v.Priority
              setting Keywords.Vrrp.advertInterval v.AdvertInterval
              setting Keywords.Vrrp.version v.Version
              keyed Keywords.Vrrp.virtualIps.Name (strings v.VirtualIps) false
              setting Keywords.Vrrp.preempt v.Preempt
              setting Keywords.Vrrp.preemptDelay v.PreemptDelay
              setting Keywords.Vrrp.garpMasterDelay v.GarpMasterDelay
              setting Keywords.Vrrp.garpMasterRepeat v.GarpMasterRepeat
              setting Keywords.Vrrp.garpMasterRefresh v.GarpMasterRefresh
              setting Keywords.Vrrp.unicastPeers v.UnicastPeers
              setting Keywords.Vrrp.trackInterfaces v.TrackInterfaces
              setting Keywords.Vrrp.trackSelf v.TrackSelfWeight
              keyed Keywords.Vrrp.trackScript.Name (TomlValue.Array [ for t in v.TrackScripts -> trackScript t ]) (v.TrackScripts.Length = 0)
              match v.AuthPassword with
              | Some p -> keyed Keywords.Vrrp.authPass.Name (str p) false
              | None -> () ] }

    let private cacheSection (c: CacheConfig) =
        let k = Keywords.Cache.maxEntry
        { Path = [ Keywords.Cache.Table ]
          Comments = [ "Used by the apps with `cache = true`." ]
          Lines =
            [ setting Keywords.Cache.memory c.MemoryBytes
              // The default entry bound is capped at the memory bound (`CacheSection.parseCacheMaxEntry`).
              keyed k.Name (k.Render c.MaxEntryBytes) (c.MaxEntryBytes = min k.Default c.MemoryBytes)
              match c.Dir with
              | Some dir ->
                  keyed Keywords.Cache.dir.Name (str dir) false
                  setting Keywords.Cache.disk c.DiskBytes
              // `disk` without `dir` is refused: the disk store is off, its bound is not written.
              | None -> TomlLine.Note "dir: none, entries are kept in memory only (default)"
              setting Keywords.Cache.xCacheHeader c.XCacheHeader ] }

    // ---- Rules ------------------------------------------------------------------------------------

    let private valueTest (name: string) (test: ValueTest) =
        TomlValue.Table
            [ "name", str name
              match test with
              | ValueTest.Present -> ()
              | ValueTest.Equals v -> "equals", str v
              | ValueTest.Matches p -> "regex", str p.Source ]

    /// A `when` table: one key per condition, `all` for several (`RulesSection.parseCondition` reads it back).
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

    /// A `then` table (`RulesSection.parseAction` reads it back; header edits come back grouped set, add, remove).
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
            [ Keywords.Server.name.Name, str s.Name
              Keywords.Server.address.Name, str (string s.Address)
              Keywords.Server.weight.Name, Keywords.Server.weight.Render s.Weight
              // Only a Named value other than the name was configured; Opaque values are always derived.
              if app.Persistence.Mode = CookieValueMode.Named && s.CookieValue <> s.Name then
                  Keywords.Server.cookie.Name, str s.CookieValue
              match s.MaxConn with
              | Some m -> Keywords.Server.maxConn.Name, int m
              | None -> () ]

    let private appSection (persistence: PersistenceConfig) (health: HealthCheckConfig) (app: AppConfig) =
        { Path = [ "apps"; app.Name ]
          Comments = []
          Lines =
            [ setting Keywords.App.balance app.Balance
              match overrides (persistenceLines app.Persistence) (persistenceLines persistence) with
              | [] -> ()
              | keys -> TomlLine.Key("persistence", TomlValue.Table keys, Some "over [persistence]")
              match overrides (healthLines app.Health) (healthLines health) with
              | [] -> ()
              | keys -> TomlLine.Key("health", TomlValue.Table keys, Some "over [health]")
              setting Keywords.App.cache app.Cache
              match app.MaxRequestBody with
              | Some bytes -> TomlLine.Key(Keywords.App.maxRequestBody.Name, TomlValue.String(ConfigReading.formatSize bytes), Some "over [defaults]")
              | None -> ()
              TomlLine.Key(Keywords.App.servers.Name, TomlValue.Array [ for s in app.Servers -> server app s ], None)
              if app.Rules.Length > 0 then rulesLine app.Rules ] }

    /// The document of a config; `render` prints it.
    let document (config: LbConfig) : TomlSection list =
        let persistence = config.Apps |> Array.map (fun a -> a.Persistence) |> mostCommon PersistenceSection.defaultPersistence
        let health =
            let common = config.Apps |> Array.map (fun a -> a.Health) |> mostCommon HealthSection.defaultHealth
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
          { Path = [ Keywords.Persistence.Table ]
            Comments = [ "Every app inherits these; an app's `persistence = { ... }` overrides them key by key." ]
            Lines = persistenceLines persistence }
          { Path = [ Keywords.Health.Table ]
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
