module Lb.Rules.Tests.DslTests

open System
open Xunit
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules
open Lb.Rules.ConfigDsl

let private allFilesExist (_: string) = true

let private forAll (g: FsCheck.Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

let private repoRoot = Reliability.repositoryRoot ()

let private loaded (result: Result<LbConfig, ConfigError list>) =
    match result with
    | Ok config -> config
    | Error errors -> failwithf "%s" (String.Join("\n", errors |> List.map string))

/// What an error says, without where: the same mistake sits on other lines in the DSL's TOML and a hand-written file.
let private said (errors: ConfigError list) =
    errors |> List.map (fun e -> e.Keyword, e.Message, e.Hint) |> List.sort

let private errorsOf (result: Result<LbConfig, ConfigError list>) =
    match result with
    | Error errors -> errors
    | Ok _ -> failwith "expected errors"

[<Fact>]
let ``the three-apps sample in F# loads to the very config the TOML sample loads to`` () =
    let samples = IO.Path.Combine(repoRoot, "samples")
    let fromToml = Config.parseText (IO.File.ReadAllText(IO.Path.Combine(samples, "three-apps.toml"))) samples allFilesExist
    let fromFSharp = ConfigDsl.parse samples allFilesExist Lb.Samples.ThreeApps.site
    Assert.Equal(loaded fromToml, loaded fromFSharp)

[<Fact>]
let ``the rules sample in F# loads to the very config the TOML rules sample loads to`` () =
    let samples = IO.Path.Combine(repoRoot, "samples")
    let fromToml = Config.parseText (IO.File.ReadAllText(IO.Path.Combine(samples, "rules.toml"))) samples allFilesExist
    Assert.Equal(loaded fromToml, loaded (ConfigDsl.parse samples allFilesExist Lb.Samples.RulesSite.site))

[<Fact>]
let ``rule mistakes in the DSL give the very errors their TOML form gives`` () =
    let mistaken =
        site {
            http "127.0.0.1:8080"
            rule (Source [ "10.1.0.0/8" ]) (Forward [ Pin [ "s1" ] ])
            app "app1" {
                server "s1" "10.0.0.1:80"
                rule (PathRegex "^/(?=admin)") (Deny 403)
                rule Always Allow
                rule (HeaderEquals("X-Beta", "1")) (Forward [ Pin [ "s2" ]; SetRequestHeader("Host", "x") ])
            }
        }
    let toml =
        """
[listen]
http = "127.0.0.1:8080"
[[rules]]
when = { source = ["10.1.0.0/8"] }
then = { pin = ["s1"] }
[apps.app1]
servers = [ { name = "s1", address = "10.0.0.1:80" } ]
[[apps.app1.rules]]
when = { path_regex = "^/(?=admin)" }
then = { deny = 403 }
[[apps.app1.rules]]
then = { allow = true }
[[apps.app1.rules]]
when = { header = { name = "X-Beta", equals = "1" } }
then = { pin = ["s2"], set_request_header = { Host = "x" } }
"""
    let fromDsl = errorsOf (ConfigDsl.parse "/etc/lb" allFilesExist mistaken)
    Assert.Equal<(string * string * string) list>(said (errorsOf (Config.parseText toml "/etc/lb" allFilesExist)), said fromDsl)
    Assert.Equal<string list>(
        [ "apps.app1.rules[0].when.path_regex"
          "apps.app1.rules[2]"
          "apps.app1.rules[2].then.pin"
          "apps.app1.rules[2].then.set_request_header.Host"
          "rules[0].then.pin"
          "rules[0].when.source" ],
        fromDsl |> List.map (fun e -> e.Keyword) |> List.sort
    )

[<Fact>]
let ``a site that names only its listener and servers gets every default, as its TOML form does`` () =
    let minimal = site { http "127.0.0.1:8080"; app "a" { server "s" "10.0.0.1:80" } }
    let toml =
        "[listen]\nhttp = \"127.0.0.1:8080\"\n[apps.a]\nservers = [ { name = \"s\", address = \"10.0.0.1:80\" } ]\n"
    let config = loaded (ConfigDsl.parse "/etc/lb" allFilesExist minimal)
    Assert.Equal(loaded (Config.parseText toml "/etc/lb" allFilesExist), config)
    Assert.Equal("lb", config.Node.Name)
    Assert.Equal(Config.defaultDefaults, config.Defaults)
    Assert.Equal(Config.defaultPersistence, config.Apps[0].Persistence)
    Assert.Equal(Config.defaultHealth, config.Apps[0].Health)
    Assert.Equal(1, config.Apps[0].Servers[0].Weight)

[<Fact>]
let ``DSL mistakes give the very errors their TOML form gives`` () =
    let mistaken =
        site {
            https "127.0.0.1:8443" (tls "lb.crt" "lb.key")
            timeoutConnect TimeSpan.Zero
            app "app1" {
                server "s1" "10.0.0.11:80"
                server "s1" "10.0.0.12:80"
                server "s2" "10.0.0.13"
                server "s3" "10.0.0.14:80" |> cookieValue "x"
                persistence (opaqueCookie "SRVID")
                health { expect "200-"; checkInterval (seconds 1); checkTimeout (seconds 2) }
            }
            app "bad/name" { server "s" "10.0.0.1:80" |> weight 300 }
        }
    let toml =
        """
[listen]
https = "127.0.0.1:8443"
[tls]
cert = "lb.crt"
key = "lb.key"
[defaults]
timeout_connect = "0ms"
[apps.app1]
persistence = { cookie = "SRVID", mode = "opaque", move_first = false }
health = { expect = "200-", interval = "1s", timeout = "2s" }
servers = [
  { name = "s1", address = "10.0.0.11:80" },
  { name = "s1", address = "10.0.0.12:80" },
  { name = "s2", address = "10.0.0.13" },
  { name = "s3", address = "10.0.0.14:80", cookie = "x" },
]
[apps."bad/name"]
servers = [ { name = "s", address = "10.0.0.1:80", weight = 300 } ]
"""
    let fromDsl = errorsOf (ConfigDsl.parse "/etc/lb" allFilesExist mistaken)
    let fromToml = errorsOf (Config.parseText toml "/etc/lb" allFilesExist)
    Assert.Equal<(string * string * string) list>(said fromToml, said fromDsl)
    let keywords = fromDsl |> List.map (fun e -> e.Keyword)
    for expected in
        [ "defaults.timeout_connect"
          "apps.app1.servers"
          "apps.app1.servers[2].address"
          "apps.app1.servers[3].cookie"
          "apps.app1.health.expect"
          "apps.app1.health.timeout"
          "apps.bad/name"
          "apps.bad/name.servers[0].weight" ] do
        Assert.Contains(expected, keywords)
    Assert.Contains("server name 's1' is used twice", fromDsl |> List.map (fun e -> e.Message))

[<Fact>]
let ``an item written twice is the duplicate key its TOML form is`` () =
    let twice = site { node "lb1"; node "lb2"; http "127.0.0.1:8080"; app "a" { server "s" "10.0.0.1:80" } }
    match ConfigDsl.parse "/etc/lb" allFilesExist twice with
    | Error [ e ] ->
        Assert.Equal("syntax", e.Keyword)
        Assert.Equal("duplicate key 'name'", e.Message)
    | other -> failwithf "%A" other

[<Fact>]
let ``every DSL item sets the setting it names`` () =
    let everything =
        site {
            node "lb-x"
            reloadOnChange true
            warmUp (TimeSpan.FromSeconds 5.0)
            httpProxied "127.0.0.1:8080"
            https "[::1]:8443" { tls "lb.crt" "lb.key" with ChainFile = Some "chain.pem" }
            redirectStatus PermanentRedirect
            retries 5
            redispatch false
            timeoutConnect (millis 1500)
            timeoutClient (minutes 2)
            timeoutServer (seconds 30)
            maxConn 10
            timeoutQueue (seconds 1)
            retryOnTimeout true
            timeoutShutdown (seconds 7)
            encodedSlashes EncodedSlashes.Decode
            maxRequestBody (gigabytes 5)
            maxRequestHeaders (kilobytes 64)
            errorPage 503 "errors/503.html"
            accessLogFile "logs/access.log"
            cacheMemory (megabytes 64)
            cacheMaxEntry (kilobytes 512)
            cacheOnDisk "cache" (gigabytes 2)
            xCacheHeader false
            persistence (opaqueCookie "LB" |> movedFirst)
            health { checkPath "/ping"; rise 3; fall 4 }
            stats (Hash "pbkdf2-sha256$10000$AAECAwQFBgcICQoLDA0ODw==$t3oJfPpS0OAqp/bkVdKiEDs6XOpwdJ6o/ZGJ9lZk8kc=") {
                statsListen "127.0.0.1:9000"
                realm "ops"
                user "ops"
                refresh (seconds 30)
                pinnedWindow (hours 1)
            }
            vrrp "eth0" 51 {
                priority 150
                advertInterval (seconds 2)
                version (V2WithPassword "secret")
                virtualIp "192.0.2.100/24"
                virtualIp "192.0.2.101/24"
                preempt false
                preemptDelay (seconds 10)
                garpMasterDelay (seconds 1)
                garpMasterRepeat 3
                garpMasterRefresh (minutes 1)
                unicastPeer "192.0.2.12"
                trackInterface "eth1"
                trackSelf 5
                trackScript { script "/bin/check" with Weight = -20; Fall = 3 }
            }
            app "app1" {
                server "a1" "10.0.0.1:80" |> weight 3 |> serverMaxConn 50
                server "a2" "backend.internal:8080"
                balance BalanceAlgorithm.LeastConn
                cache true
                appMaxRequestBody (megabytes 10)
                health {
                    checksEnabled true
                    checkMethod "HEAD"
                    checkHost "app1.internal"
                    expect "2xx"
                    checkInterval (seconds 5)
                    checkTimeout (seconds 1)
                    spread 10
                    checkUserAgent "probe/1"
                }
            }
            app "app2" {
                server "b1" "10.0.0.2:80" |> cookieValue "b-one"
                persistence (cookie "B")
            }
            app "app3" {
                server "c1" "10.0.0.3:80"
                noPersistence
                health { checksEnabled false }
            }
        }
    let c = loaded (ConfigDsl.parse "/etc/lb" allFilesExist everything)
    Assert.Equal("lb-x", c.Node.Name)
    Assert.True(c.Node.ReloadOnChange)
    Assert.Equal(TimeSpan.FromSeconds 5.0, c.Node.WarmUp)
    Assert.Equal(PlainHttpMode.Proxy, c.Listen.PlainHttp)
    Assert.Equal(Some { Host = "::1"; Port = 8443 }, c.Listen.Https)
    Assert.Equal(Some { Cert = "/etc/lb/lb.crt"; Key = "/etc/lb/lb.key"; Chain = Some "/etc/lb/chain.pem" }, c.Tls)
    Assert.Equal(308, c.Listen.RedirectStatus)
    Assert.Equal(
        { Retries = 5
          Redispatch = false
          TimeoutConnect = TimeSpan.FromMilliseconds 1500.0
          TimeoutClient = TimeSpan.FromMinutes 2.0
          TimeoutServer = TimeSpan.FromSeconds 30.0
          MaxConn = 10
          TimeoutQueue = TimeSpan.FromSeconds 1.0
          RetryOnTimeout = true
          TimeoutShutdown = TimeSpan.FromSeconds 7.0
          EncodedSlashes = EncodedSlashes.Decode
          MaxRequestBody = 5L <<< 30
          MaxRequestHeaders = 64L <<< 10 },
        c.Defaults
    )
    Assert.Equal<(int * string) array>([| 503, "/etc/lb/errors/503.html" |], c.ErrorPages)
    Assert.Equal(AccessLogTarget.File "/etc/lb/logs/access.log", c.Log.Access)
    Assert.Equal(
        { MemoryBytes = 64L <<< 20; MaxEntryBytes = 512L <<< 10; Dir = Some "/etc/lb/cache"; DiskBytes = 2L <<< 30; XCacheHeader = false },
        c.Cache
    )
    let stats = c.Stats.Value
    Assert.Equal(({ Host = "127.0.0.1"; Port = 9000 }, "ops", "ops"), (stats.Listen, stats.Realm, stats.User))
    Assert.Equal((TimeSpan.FromSeconds 30.0, TimeSpan.FromHours 1.0), (stats.Refresh, stats.PinnedWindow))
    let v = c.Vrrp.Value
    Assert.Equal(("eth0", 51, 150, 2, Some "secret"), (v.Interface, v.VirtualRouterId, v.Priority, v.Version, v.AuthPassword))
    Assert.Equal<string array>([| "192.0.2.100/24"; "192.0.2.101/24" |], v.VirtualIps)
    Assert.Equal((false, TimeSpan.FromSeconds 10.0, TimeSpan.FromSeconds 1.0, 3), (v.Preempt, v.PreemptDelay, v.GarpMasterDelay, v.GarpMasterRepeat))
    Assert.Equal((TimeSpan.FromMinutes 1.0, Some 5), (v.GarpMasterRefresh, v.TrackSelfWeight))
    Assert.Equal<string array>([| "192.0.2.12" |], v.UnicastPeers)
    Assert.Equal<string array>([| "eth1" |], v.TrackInterfaces)
    Assert.Equal<TrackScriptConfig array>([| { Command = "/bin/check"; Interval = TimeSpan.FromSeconds 2.0; Weight = -20; Rise = 1; Fall = 3 } |], v.TrackScripts)
    let app1, app2, app3 = c.Apps[0], c.Apps[1], c.Apps[2]
    Assert.Equal((BalanceAlgorithm.LeastConn, true), (app1.Balance, app1.Cache))
    Assert.Equal((Some(10L <<< 20), None), (app1.MaxRequestBody, app2.MaxRequestBody))
    Assert.Equal({ Cookie = Some "LB"; Mode = CookieValueMode.Opaque; MoveFirst = true }, app1.Persistence)
    Assert.Equal((3, Some 50), (app1.Servers[0].Weight, app1.Servers[0].MaxConn))
    Assert.Equal({ Host = "backend.internal"; Port = 8080 }, app1.Servers[1].Address)
    let h = app1.Health
    Assert.Equal(("HEAD", "/ping", Some "app1.internal", "200-299"), (h.Method, h.Path, h.Host, string h.Expected))
    Assert.Equal((TimeSpan.FromSeconds 5.0, TimeSpan.FromSeconds 1.0, 3, 4, 10, "probe/1"), (h.Interval, h.Timeout, h.Thresholds.Rise, h.Thresholds.Fall, h.Spread, h.UserAgent))
    Assert.Equal({ Cookie = Some "B"; Mode = CookieValueMode.Named; MoveFirst = false }, app2.Persistence)
    Assert.Equal("b-one", app2.Servers[0].CookieValue)
    Assert.Equal(None, app3.Persistence.Cookie)
    Assert.False app3.Health.Enabled
    Assert.Equal("/ping", app3.Health.Path)

/// The configs the DSL can say: it has no words for a [tls] without an https listener, `plain_http = "proxy"`
/// without an http listener, or a persistence mode with the cookie off (each changes nothing lb does).
let private sayable (c: LbConfig) =
    (c.Listen.Https.IsSome || c.Tls.IsNone)
    && (c.Listen.Http.IsSome || c.Listen.PlainHttp = PlainHttpMode.RedirectToHttps)
    && c.Apps
       |> Array.forall (fun a -> a.Persistence.Cookie.IsSome || (a.Persistence.Mode = CookieValueMode.Named && not a.Persistence.MoveFirst))

let rec private whenOf (c: Condition) : When =
    let test name (t: ValueTest) present equals regex =
        match t with
        | ValueTest.Present -> present name
        | ValueTest.Equals v -> equals (name, v)
        | ValueTest.Matches p -> regex (name, p.Source)
    match c with
    | Condition.Always -> Always
    | Condition.PathPrefix p -> PathPrefix p
    | Condition.PathSegment p -> PathSegment p
    | Condition.PathMatches p -> PathRegex p.Source
    | Condition.Host h -> Host h
    | Condition.Method ms -> Method ms
    | Condition.Header(n, t) -> test n t HeaderPresent HeaderEquals HeaderRegex
    | Condition.Cookie(n, t) -> test n t CookiePresent CookieEquals CookieRegex
    | Condition.Source ns -> Source(ns |> List.map string)
    | Condition.All cs -> All(cs |> List.map whenOf)
    | Condition.Any cs -> Any(cs |> List.map whenOf)
    | Condition.Not c -> Not(whenOf c)

let private thenOf (a: RuleAction) : Then =
    match a with
    | RuleAction.Deny s -> Deny s
    | RuleAction.Redirect(s, l) ->
        let status =
            match s with
            | 301 -> MovedPermanently
            | 303 -> SeeOther
            | 307 -> TemporaryRedirect
            | 308 -> PermanentRedirect
            | _ -> Found
        Redirect(status, l)
    | RuleAction.Forward f when f.Route.IsNone && f.Pin.IsEmpty && f.RequestHeaders.IsEmpty && f.ResponseHeaders.IsEmpty -> Allow
    | RuleAction.Forward f ->
        let edits (set, add, remove) (list: HeaderEdit list) =
            list
            |> List.map (function
                | HeaderEdit.Set(n, v) -> set (n, v)
                | HeaderEdit.Add(n, v) -> add (n, v)
                | HeaderEdit.Remove n -> remove n)
        Forward
            [ yield! f.Route |> Option.map Route |> Option.toList
              if not f.Pin.IsEmpty then Pin f.Pin
              yield! edits (SetRequestHeader, AddRequestHeader, RemoveRequestHeader) f.RequestHeaders
              yield! edits (SetResponseHeader, AddResponseHeader, RemoveResponseHeader) f.ResponseHeaders ]

/// A config said in the DSL, every setting written.
let private inDsl (c: LbConfig) : Site =
    site {
        node c.Node.Name
        reloadOnChange c.Node.ReloadOnChange
        warmUp c.Node.WarmUp
        for r in c.Rules do
            rule (whenOf r.When) (thenOf r.Then)
        match c.Listen.Http, c.Listen.PlainHttp with
        | Some e, PlainHttpMode.Proxy -> httpProxied (string e)
        | Some e, _ -> http (string e)
        | None, _ -> ()
        match c.Listen.Https, c.Tls with
        | Some e, Some t -> https (string e) { tls t.Cert t.Key with ChainFile = t.Chain }
        | _ -> ()
        redirectStatus (
            match c.Listen.RedirectStatus with
            | 301 -> MovedPermanently
            | 303 -> SeeOther
            | 307 -> TemporaryRedirect
            | 308 -> PermanentRedirect
            | _ -> Found
        )
        retries c.Defaults.Retries
        redispatch c.Defaults.Redispatch
        timeoutConnect c.Defaults.TimeoutConnect
        timeoutClient c.Defaults.TimeoutClient
        timeoutServer c.Defaults.TimeoutServer
        maxConn c.Defaults.MaxConn
        timeoutQueue c.Defaults.TimeoutQueue
        retryOnTimeout c.Defaults.RetryOnTimeout
        timeoutShutdown c.Defaults.TimeoutShutdown
        encodedSlashes c.Defaults.EncodedSlashes
        maxRequestBody c.Defaults.MaxRequestBody
        maxRequestHeaders c.Defaults.MaxRequestHeaders
        for status, file in c.ErrorPages do
            errorPage status file
        match c.Stats with
        | Some s ->
            stats (Hash(string s.PasswordHash)) {
                statsListen (string s.Listen)
                realm s.Realm
                user s.User
                refresh s.Refresh
                pinnedWindow s.PinnedWindow
            }
        | None -> ()
        match c.Log.Access with
        | AccessLogTarget.Stdout -> accessLogStdout
        | AccessLogTarget.Off -> accessLogOff
        | AccessLogTarget.File file -> accessLogFile file
        match c.Vrrp with
        | Some v ->
            vrrp v.Interface v.VirtualRouterId {
                priority v.Priority
                advertInterval v.AdvertInterval
                version (
                    match v.Version, v.AuthPassword with
                    | 2, Some p -> V2WithPassword p
                    | 2, None -> V2
                    | _ -> V3
                )
                for ip in v.VirtualIps do
                    virtualIp ip
                preempt v.Preempt
                if v.PreemptDelay > TimeSpan.Zero then preemptDelay v.PreemptDelay
                garpMasterDelay v.GarpMasterDelay
                garpMasterRepeat v.GarpMasterRepeat
                if v.GarpMasterRefresh > TimeSpan.Zero then garpMasterRefresh v.GarpMasterRefresh
                for peer in v.UnicastPeers do
                    unicastPeer peer
                for name in v.TrackInterfaces do
                    trackInterface name
                match v.TrackSelfWeight with
                | Some w -> trackSelf w
                | None -> noTrackSelf
                for s in v.TrackScripts do
                    trackScript s
            }
        | None -> ()
        cacheMemory c.Cache.MemoryBytes
        cacheMaxEntry c.Cache.MaxEntryBytes
        match c.Cache.Dir with
        | Some dir -> cacheOnDisk dir c.Cache.DiskBytes
        | None -> ()
        xCacheHeader c.Cache.XCacheHeader
        for a in c.Apps do
            app a.Name {
                balance a.Balance
                cache a.Cache
                match a.MaxRequestBody with
                | Some bytes -> appMaxRequestBody bytes
                | None -> ()
                for r in a.Rules do
                    rule (whenOf r.When) (thenOf r.Then)
                match a.Persistence.Cookie with
                | Some name -> persistence { CookieName = name; CookieMode = a.Persistence.Mode; CookieMovedFirst = a.Persistence.MoveFirst }
                | None -> noPersistence
                health {
                    checksEnabled a.Health.Enabled
                    checkMethod a.Health.Method
                    checkPath a.Health.Path
                    match a.Health.Host with
                    | Some h -> checkHost h
                    | None -> ()
                    expect (string a.Health.Expected)
                    checkInterval a.Health.Interval
                    checkTimeout a.Health.Timeout
                    rise a.Health.Thresholds.Rise
                    fall a.Health.Thresholds.Fall
                    spread a.Health.Spread
                    checkUserAgent a.Health.UserAgent
                }
                for s in a.Servers do
                    let named = a.Persistence.Mode = CookieValueMode.Named && s.CookieValue <> s.Name
                    server s.Name (string s.Address)
                    |> weight s.Weight
                    |> (if named then cookieValue s.CookieValue else id)
                    |> (match s.MaxConn with
                        | Some m -> serverMaxConn m
                        | None -> id)
            }
    }

[<Property(MaxTest = 200)>]
let ``every generated config the DSL can say, said in the DSL, loads back equal`` () =
    forAll (Generators.lbConfig |> Gen.filter sayable) (fun config ->
        match ConfigDsl.parse "/etc/lb" allFilesExist (inDsl config) with
        | Ok loaded -> loaded = config
        | Error errors -> failwithf "%s\n%s" (ConfigDsl.toToml (inDsl config)) (String.Join("\n", errors |> List.map string)))
