namespace Lb.Rules

open System
open ConfigReading

/// Loads and validates the whole configuration from TOML text (Tomlyn), section by section.
/// Never throws: every mistake comes back as a `ConfigError` with line, column and a hint.
[<RequireQualifiedAccess>]
module Config =
    let private topLevelKeys =
        [ Keywords.Node.Table; Keywords.Listen.Table; Keywords.Tls.Table; Keywords.Defaults.Table; Keywords.Persistence.Table
          Keywords.Health.Table; "errors"; "apps"; Keywords.Stats.Table; Keywords.Log.Table; Keywords.Vrrp.Table
          Keywords.Cache.Table; "rules" ]

    // The names callers outside the loader (C#, tests, `lb config show`) have always used, kept here so the
    // split into one module per section does not move them; each is the section's own value, not a copy.

    /// The version in the default health-check User-Agent.
    [<Literal>]
    let Version = HealthSection.Version

    /// `lb-healthcheck/<version>`.
    [<Literal>]
    let DefaultUserAgent = HealthSection.DefaultUserAgent

    let maxWarmUp = NodeSection.maxWarmUp
    let defaultDefaults = DefaultsSection.defaultDefaults

    /// `DefaultsSection.MaxRequestBodyLimit`.
    let MaxRequestBodyLimit = DefaultsSection.MaxRequestBodyLimit
    let defaultPersistence = PersistenceSection.defaultPersistence
    let defaultHealth = HealthSection.defaultHealth
    let DefaultHealthTimeout = HealthSection.DefaultHealthTimeout
    let errorPageStatuses = ErrorPagesSection.errorPageStatuses
    let DefaultStatsListen = StatsSection.DefaultStatsListen
    let defaultLog = LogSection.defaultLog
    let isValidVirtualIp text = VrrpSection.isValidVirtualIp text
    let defaultCache = CacheSection.defaultCache
    let parseSize text = ConfigReading.parseSize text
    let formatSize bytes = ConfigReading.formatSize bytes

    /// Reads the whole file. `baseDir` resolves relative paths; file access is injected (`io`) so this stays pure.
    let parseTextWith (io: ConfigIo) (text: string) (baseDir: string) : Result<LbConfig, ConfigError list> =
        match TomlTree.parse text with
        | Error syntax ->
            Error
                [ for message, at in syntax ->
                      { Keyword = "syntax"; Line = at.Line; Column = at.Column; Message = message; Hint = "see https://toml.io for TOML syntax" } ]
        | Ok table ->
            let root = { Path = ""; Table = table }
            let (), topLevel = ownErrors (fun errors -> rejectUnknownKeys errors root topLevelKeys)
            // Each section reads into errors of its own; the sections only hand each other values.
            let node, nodeErrors = NodeSection.parse root
            let listen, listenErrors = ListenSection.parse root
            let tls, tlsErrors = TlsSection.parse root baseDir io listen
            let defaults, defaultsErrors = DefaultsSection.parse root
            let persistence, persistenceErrors = PersistenceSection.parseGlobal root
            let health, healthErrors = HealthSection.parseGlobal root
            let errorPages, errorPagesErrors = ErrorPagesSection.parse root baseDir io.FileExists
            let apps, appsErrors = AppsSection.parse root persistence health
            let stats, statsErrors = StatsSection.parse root baseDir io listen
            let log, logErrors = LogSection.parse root baseDir
            let vrrp, vrrpErrors = VrrpSection.parse root
            let cache, cacheErrors = CacheSection.parse root baseDir
            let rules, rulesErrors = RulesSection.parse root apps
            let errors =
                List.concat
                    [ topLevel; nodeErrors; listenErrors; tlsErrors; defaultsErrors; persistenceErrors; healthErrors
                      errorPagesErrors; appsErrors; statsErrors; logErrors; vrrpErrors; cacheErrors; rulesErrors ]
            if not errors.IsEmpty then
                Error(errors |> List.sortBy (fun e -> e.Line, e.Column))
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
