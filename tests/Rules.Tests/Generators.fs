/// Every generator of the Rules property tests, in one place (STYLE rule 9).
module Lb.Rules.Tests.Generators

open System
open FsCheck
open FsCheck.FSharp
open Lb.Rules

// ---- Cookies --------------------------------------------------------------------------------------

/// The persistence cookie name used throughout the cookie properties (the seed's).
let persistenceName = Cookies.DefaultName

/// Characters a hostile application or client puts in cookies: everything that tripped parsers before,
/// the HAProxy < 1.3.23 bug included (`=`, quotes, commas, spaces, backslashes, non-ASCII, NBSP, a
/// surrogate pair). No `;` (a user agent never sends one inside a pair, RFC 6265 §5.4) and no control
/// character (RFC 6265bis §5.6 step 1 drops such cookies).
let private hostileChars =
    [ yield! [ 'a' .. 'e' ]
      yield! [ 'S'; 'R'; 'V'; 'I'; 'D'; '0'; '9'; '_'; '-' ]
      yield! [ '='; '"'; ','; ' '; '\t'; '\\'; '/'; ':'; '{'; '}'; '%'; '$'; '!'; '\''; '('; ')' ]
      yield! [ 'é'; 'ü'; '日'; 'Ω'; '\u00A0'; '\u2028' ] ]

let private hostileText: Gen<string> =
    Gen.frequency
        [ 8, Gen.elements hostileChars |> Gen.map string
          1, Gen.constant "😀" // a surrogate pair must never be split or mangled
          1, Gen.constant (persistenceName + "=") ] // the persistence name inside someone else's value
    |> Gen.listOf
    |> Gen.map String.Concat

let private trimOws (s: string) = s.Trim [| ' '; '\t' |]

/// Text as it survives a round trip through a `Cookie:` header: no spaces or tabs at either end.
let private trimmed (g: Gen<string>) = g |> Gen.map trimOws

/// Trimmed text without `=`, for names (the first `=` ends a name).
let private withoutEquals (g: Gen<string>) =
    g |> Gen.map (fun s -> trimOws (s.Replace("=", "")))

/// Names that look like the persistence name but are not it: parsers that match prefixes, suffixes,
/// case-insensitively or inside quotes get caught.
let private confusableName =
    Gen.elements
        [ "srvid"; "SRVIDX"; "XSRVID"; "SRV ID"; "\"SRVID\""; "SRVİD"; "SRVID\u00A0"; "_SRVID"; "SRVID_"; "S" ]

/// A cookie name a browser can send back: non-empty, no `=` (the first `=` ends the name), trimmed,
/// never the persistence name itself.
let cookieName: Gen<string> =
    Gen.frequency [ 3, withoutEquals hostileText; 1, confusableName ]
    |> Gen.filter (fun s -> s <> "" && s <> persistenceName)

/// A cookie value a browser can send back: possibly empty, trimmed, with `=`, quotes, commas, spaces,
/// non-ASCII, and sometimes a fake persistence pair inside.
let cookieValue: Gen<string> =
    Gen.frequency
        [ 4, trimmed hostileText
          1, Gen.constant ("x " + persistenceName + "=forged")
          1, Gen.constant ("\"" + persistenceName + "=forged\"") ]

/// A neighbour of the persistence cookie: usually `name=value`, sometimes a nameless "flag" (RFC 6265bis
/// treats `foo` as name "" value "foo"), which must not hold `=` or it would read as named.
let hostileCookie: Gen<CookiePair> =
    Gen.frequency
        [ 9, Gen.map2 (fun n v -> { Name = n; Value = v }) cookieName cookieValue
          1,
          withoutEquals hostileText
          |> Gen.filter (fun s -> s <> "")
          |> Gen.map (fun s -> { Name = ""; Value = s }) ]

/// A persistence value as lb emits it: a server name or an opaque digest.
let persistenceValue: Gen<string> =
    Gen.oneof
        [ Gen.map2 (fun a s -> sprintf "app%d_%d" a s) (Gen.choose (1, 9)) (Gen.choose (1, 9))
          Gen.map2
              (fun a s -> Cookies.opaqueValue (a, s, "10.0.0.1:80"))
              (Gen.elements [ "app1"; "app2" ])
              (Gen.elements [ "s1"; "s2"; "s3" ]) ]

/// How a pair is written: `name=value`, or the bare value for a nameless cookie.
let render (pair: CookiePair) =
    if pair.Name = "" then pair.Value else pair.Name + "=" + pair.Value

/// Spacing around a `;`: browsers send "; ", hand-written clients and old proxies send anything.
let separator: Gen<string> =
    let spaces = Gen.elements [ ""; " "; "  "; "\t"; " \t "; "   " ]
    Gen.frequency
        [ 4, Gen.constant "; "
          3, Gen.map2 (fun a b -> a + ";" + b) spaces spaces
          1, Gen.map2 (fun a b -> a + ";;" + b) spaces spaces ]

/// Joins pairs into one header value with generated separators and optional stray spacing at the ends.
let headerOf (pairs: CookiePair list) : Gen<string> =
    gen {
        let! seps = Gen.listOfLength (max 0 (pairs.Length - 1)) separator
        let! lead = Gen.elements [ ""; " "; "\t"; ";" ]
        let! trail = Gen.elements [ ""; " "; ";"; "; " ]
        let body =
            match pairs with
            | [] -> ""
            | first :: rest -> List.fold2 (fun acc sep p -> acc + sep + render p) (render first) seps rest
        return lead + body + trail
    }

/// Hostile neighbours, at least `min` of them.
let hostileCookies (min: int) : Gen<CookiePair list> =
    Gen.sized (fun size -> gen {
        let! n = Gen.choose (min, max min (size / 4 + min))
        return! Gen.listOfLength n hostileCookie
    })

/// Hostile neighbours with 1-3 persistence cookies inserted at random positions, and the header text.
let withPersistenceCookies =
    gen {
        let! neighbours = hostileCookies 0
        let! values = Gen.choose (1, 3) |> Gen.bind (fun k -> Gen.listOfLength k persistenceValue)
        let! pairs =
            values
            |> List.fold
                (fun acc v ->
                    acc
                    |> Gen.bind (fun ps -> Gen.choose (0, List.length ps) |> Gen.map (fun at -> List.insertAt at { Name = persistenceName; Value = v } ps)))
                (Gen.constant neighbours)
        let! header = headerOf pairs
        return neighbours, pairs, header
    }

/// RFC 9110 §5.6.2 tokens (cookie names), never with a `__` prefix.
let token: Gen<string> =
    Gen.elements (
        [ 'a' .. 'z' ] @ [ 'A' .. 'Z' ] @ [ '0' .. '9' ]
        @ [ '!'; '#'; '$'; '%'; '&'; '\''; '*'; '+'; '-'; '.'; '^'; '_'; '`'; '|'; '~' ]
    )
    |> Gen.nonEmptyListOf
    |> Gen.map String.Concat
    |> Gen.filter (fun n -> not (n.StartsWith("__", StringComparison.Ordinal)))

/// An app's servers: distinct names with addresses.
let appServers =
    gen {
        let! n = Gen.choose (1, 8)
        let! names = Gen.listOfLength n (Gen.choose (1, 99) |> Gen.map (sprintf "srv%d")) |> Gen.map List.distinct
        let! addresses = Gen.listOfLength names.Length (Gen.map2 (sprintf "10.0.%d.%d:8080") (Gen.choose (0, 255)) (Gen.choose (1, 254)))
        let! app = Gen.elements [ "app1"; "app2"; "billing"; "wiki" ]
        return app, List.zip names addresses |> Array.ofList
    }

/// `neighbours` (none called `name`) with `name=value` inserted first, in the middle and last: three headers.
let placedAmong (name: string) (value: string) (neighbours: CookiePair list) : Gen<string list> =
    let neighbours = neighbours |> List.filter (fun p -> p.Name <> name)
    [ 0; neighbours.Length / 2; neighbours.Length ]
    |> List.map (fun at -> headerOf (List.insertAt at { Name = name; Value = value } neighbours))
    |> Gen.sequenceToList

/// Any string at all, control characters and CR/LF/NUL injection attempts included (header, path and cookie
/// properties alike).
let anyText: Gen<string> =
    Gen.frequency
        [ 3, hostileText
          1,
          Gen.elements
              [ "\r\n"; "\r"; "\n"; "\u0000"; "x\r\nSet-Cookie: evil=1"; "/x\r\nLocation: http://evil/"; ";"; "=" ]
          2, ArbMap.defaults |> ArbMap.generate<string> |> Gen.map (fun (s: string) -> if String.IsNullOrEmpty s then "" else s) ]
    |> Gen.listOf
    |> Gen.map String.Concat

/// A `Cache-Control` directive a backend may send, quoted commas included.
let cacheDirective: Gen<string> =
    Gen.elements
        [ "max-age=60"; "no-store"; "public"; "PUBLIC"; "Public"; "private"; "Private"; "private=\"set-cookie\""
          "no-cache=\"set-cookie, x-token\""; "s-maxage=10"; "must-revalidate"; "ext=\"a,b\""; "no-transform"
          "stale-while-revalidate=30"; "immutable" ]

/// Backend `Cache-Control` field lines: none, one or several, each a list with odd spacing.
let cacheControlLines: Gen<string list * string[]> =
    gen {
        let! directives = Gen.listOf cacheDirective
        let! cuts = Gen.listOfLength directives.Length (Gen.elements [ ", "; ","; " , "; ",, " ])
        let! splitAt = Gen.choose (0, directives.Length)
        let joined (ds: string list) (ss: string list) =
            List.zip ds ss |> List.map (fun (d, s) -> d + s) |> String.concat ""
        let first = joined (List.take splitAt directives) (List.take splitAt cuts)
        let second = joined (List.skip splitAt directives) (List.skip splitAt cuts)
        let lines = [| first; second |] |> Array.filter (fun l -> l <> "")
        return directives, lines
    }

// ---- Balancing ------------------------------------------------------------------------------------

/// One app's servers: weights (0 sometimes, as HAProxy allows) and an up mask.
type Pool = { Weights: int[]; Up: bool[] }

let pool: Gen<Pool> =
    gen {
        let! n = Gen.choose (1, 8)
        let! weights = Gen.arrayOfLength n (Gen.frequency [ 1, Gen.constant 0; 6, Gen.choose (1, 10); 1, Gen.choose (11, 256) ])
        let! up = Gen.arrayOfLength n (Gen.frequency [ 4, Gen.constant true; 1, Gen.constant false ])
        return { Weights = weights; Up = up }
    }

/// Effective weight: the weight of an up server, else 0.
let effective (p: Pool) = Array.map2 (fun w u -> if u then w else 0) p.Weights p.Up

/// A pool with at least one available server, and small weights so full rounds stay short.
let livePool: Gen<Pool> =
    gen {
        let! n = Gen.choose (1, 8)
        let! weights = Gen.arrayOfLength n (Gen.frequency [ 1, Gen.constant 0; 6, Gen.choose (1, 12) ])
        let! up = Gen.arrayOfLength n (Gen.frequency [ 4, Gen.constant true; 1, Gen.constant false ])
        return { Weights = weights; Up = up }
    }
    |> Gen.filter (fun p -> Array.sum (effective p) > 0)

/// Active connection counts for a pool (a negative count sometimes, which must read as 0).
let activeFor (p: Pool) : Gen<int[]> =
    Gen.arrayOfLength p.Weights.Length (Gen.frequency [ 1, Gen.constant -1; 8, Gen.choose (0, 20); 1, Gen.choose (0, 100000) ])

// ---- Health ---------------------------------------------------------------------------------------

let thresholds: Gen<HealthThresholds> =
    Gen.map2
        (fun r f ->
            match Health.thresholds (r, f) with
            | Ok t -> t
            | Error e -> failwithf "generator made invalid thresholds: %A" e)
        (Gen.choose (1, 10))
        (Gen.choose (1, 10))

/// Check results: runs of successes and failures, so long runs are common.
let checkResults: Gen<bool list> =
    Gen.listOf (Gen.map2 (fun ok n -> List.replicate n ok) (Gen.elements [ true; false ]) (Gen.choose (1, 12)))
    |> Gen.map List.concat

/// A health state reached by a real history, from either start.
let reachedState: Gen<HealthState> =
    gen {
        let! t = thresholds
        let! startUp = Gen.elements [ true; false ]
        let! results = checkResults
        return results |> List.fold (fun s ok -> fst (Health.step (s, ok))) (Health.initial (t, startUp))
    }

/// One item of an expected-status spec, with the statuses it stands for.
let statusItem: Gen<string * (int * int)> =
    Gen.oneof
        [ Gen.choose (100, 599) |> Gen.map (fun c -> string c, (c, c))
          Gen.map2
              (fun a b -> let lo, hi = min a b, max a b in sprintf "%d-%d" lo hi, (lo, hi))
              (Gen.choose (100, 599))
              (Gen.choose (100, 599))
          Gen.map2 (fun c x -> sprintf "%d%s" c x, (c * 100, c * 100 + 99)) (Gen.choose (1, 5)) (Gen.elements [ "xx"; "XX"; "xX" ]) ]

let status: Gen<int> = Gen.frequency [ 4, Gen.choose (100, 599); 1, Gen.choose (-10, 1000) ]

/// A uniform draw in [0, 1), edges included.
let unitDraw: Gen<float> =
    Gen.frequency
        [ 1, Gen.elements [ 0.0; 0.5; 0.9999999999999999 ]
          6, Gen.choose (0, Int32.MaxValue - 1) |> Gen.map (fun n -> float n / float Int32.MaxValue) ]

let interval: Gen<TimeSpan> =
    Gen.frequency
        [ 3, Gen.choose (1, 120_000) |> Gen.map (fun ms -> TimeSpan.FromMilliseconds(float ms))
          1, Gen.elements [ TimeSpan.Zero; TimeSpan.FromTicks 1L; TimeSpan.FromSeconds 10.0; TimeSpan.FromDays 1.0 ] ]

// ---- Routing --------------------------------------------------------------------------------------

/// App names that are prefixes, extensions or case variants of one another: `/app10/` must not be app1.
let appNames = [ "app1"; "app2"; "app10"; "App1"; "a.b"; "x-y_z~" ]

/// Path segments chosen to attack routing: dot-segments plain and encoded, encoded slashes and
/// backslashes, other apps' names, empty segments, non-ASCII and reserved characters.
let hostileSegment: Gen<string> =
    Gen.frequency
        [ 6, Gen.elements [ ".."; "."; "%2e%2e"; "%2E%2e"; ".%2e"; "%2e"; "%2F"; "..%2F"; "%2f..%2f"; "%5C"; "\\.."; ""; "%00x"; "%zz"; "%" ]
          // Encoded slashes as data and next to dot segments, each case, backslashes, double encoding.
          3, Gen.elements [ "a%2Fb"; "a%2fb"; ".%2F"; "%2F."; "x%2F.."; "%2e%2e%2F"; "..%5c"; "a%5Cb"; "a\\b"; "%2F%2F"; "x%252F"; "%252e%252e" ]
          6, Gen.elements (appNames @ [ "app1x"; "app"; "APP1"; "app1%2F..%2Fapp2" ])
          4, Gen.elements [ "x"; "rest"; "a b"; "é"; "日本"; "%41"; "%7e"; "~"; "index.html"; ";p=1"; "@"; ":" ] ]

/// A request path of hostile segments, sometimes with a trailing slash.
let hostilePath: Gen<string> =
    gen {
        let! segments = Gen.listOfLength 4 hostileSegment |> Gen.resize 6
        let! n = Gen.choose (0, 5)
        let! trailing = Gen.elements [ ""; "/" ]
        return "/" + String.Join("/", List.truncate n segments) + trailing
    }

let query: Gen<string> = Gen.elements [ ""; "?"; "?q=1"; "?a=b&c=%2F..%2F"; "?x=/app2/y"; "?%0d%0a=1" ]

let server name port : ServerConfig =
    { Name = name
      Address = { Host = "127.0.0.1"; Port = port }
      Weight = 1
      CookieValue = name
      MaxConn = None }

/// A config with every app of `appNames`, each with its own servers on distinct ports.
let routingConfig: LbConfig =
    { Node = { Name = "lb-test"; ReloadOnChange = false; WarmUp = TimeSpan.Zero }
      Listen =
        { Http = Some { Host = "127.0.0.1"; Port = 8080 }
          Https = Some { Host = "127.0.0.1"; Port = 8443 }
          PlainHttp = PlainHttpMode.RedirectToHttps
          RedirectStatus = 302 }
      Tls = Some { Cert = "/c.pem"; Key = "/k.pem"; Chain = None }
      Defaults = Config.defaultDefaults
      Apps =
        appNames
        |> List.mapi (fun i name ->
            { Name = name
              Servers = [| server $"{name}_1" (9000 + 10 * i); server $"{name}_2" (9001 + 10 * i) |]
              Balance = BalanceAlgorithm.RoundRobin
              Persistence = Config.defaultPersistence
              Health = Config.defaultHealth
              Cache = false
              MaxRequestBody = None
              Rules = [||] })
        |> Array.ofList
      ErrorPages = [||]
      Stats = None
      Log = Config.defaultLog
      Vrrp = None
      Cache = Config.defaultCache
      Rules = [||] }

let routingSnapshot = Snapshot routingConfig

/// The three `[defaults] encoded_slashes` modes.
let encodedSlashModes = [ EncodedSlashes.Reject; EncodedSlashes.Keep; EncodedSlashes.Decode ]

/// `routingConfig` with `[defaults] encoded_slashes = mode`.
let routingSnapshotIn (mode: EncodedSlashes) =
    Snapshot { routingConfig with Defaults = { routingConfig.Defaults with EncodedSlashes = mode } }

/// `routingConfig` in `keep` mode: an encoded slash that is data (`a%2Fb`) is forwarded as it came.
let keepingSnapshot = routingSnapshotIn EncodedSlashes.Keep

let request isHttps target : RequestFacts =
    { IsHttps = isHttps; Host = "site.example"; Method = "GET"; RawTarget = target; ClientAddress = "192.0.2.1"; ForwardedFor = None; Headers = [||] }

/// A valid path under an app: what a client of app `name` sends, already in normal form.
let pathUnder: Gen<string * string> =
    gen {
        let! app = Gen.elements appNames
        let! segments = Gen.listOf (Gen.elements [ "x"; "rest"; "a%2Fb"; "%C3%A9"; "index.html"; "" ]) |> Gen.resize 4
        let rest = "/" + String.Join("/", segments |> List.filter ((<>) ""))
        return app, "/" + app + rest
    }

type Arbitraries =
    static member HostilePath() = Arb.fromGen hostilePath

// ---- Valid configurations -------------------------------------------------------------------------

let private ms (n: int) = TimeSpan.FromMilliseconds(float n)

/// A duration in whole milliseconds, often whole seconds, as people write them.
let private durationBetween (lowMs: int) (highMs: int) : Gen<TimeSpan> =
    Gen.oneof
        [ Gen.choose (lowMs, highMs) |> Gen.map ms
          Gen.choose (max 1 (lowMs / 1000), max 1 (highMs / 1000)) |> Gen.map (fun s -> ms (s * 1000)) ]
    |> Gen.filter (fun d -> d.TotalMilliseconds >= float lowMs && d.TotalMilliseconds <= float highMs)

/// Valid persistence cookie names: RFC 6265 tokens, `__Secure-` included, never `__Host-`.
let persistenceCookieName: Gen<string> =
    Gen.elements [ Cookies.DefaultName; "SERVERID"; "lb"; "x-srv"; "__Secure-SRVID"; "a.b!#$%&'*+^_`|~" ]

let persistenceConfig: Gen<PersistenceConfig> =
    gen {
        let! cookie = Gen.frequency [ 6, persistenceCookieName |> Gen.map Some; 1, Gen.constant None ]
        let! mode = Gen.elements [ CookieValueMode.Named; CookieValueMode.Opaque ]
        let! moveFirst = Gen.frequency [ 4, Gen.constant false; 1, Gen.constant true ]
        return { Cookie = cookie; Mode = mode; MoveFirst = moveFirst }
    }

let private expected spec =
    match Health.parseExpected spec with
    | Ok e -> e
    | Error e -> failwithf "generator made an invalid expect: %A" e

let healthConfig: Gen<HealthCheckConfig> =
    gen {
        let! enabled = Gen.frequency [ 4, Gen.constant true; 1, Gen.constant false ]
        let! method = Gen.elements [ "GET"; "HEAD"; "OPTIONS"; "X-CHECK" ]
        let! path = Gen.elements [ "/"; "/ping"; "/health?full=1"; "/a%20b/status" ]
        let! host = Gen.elements [ None; Some "app.internal"; Some "app.internal:8080"; Some "[::1]:80" ]
        let! expect = Gen.elements [ "200-399"; "2xx"; "200,204"; "200-299,404"; "200" ] |> Gen.map expected
        let! interval = durationBetween 200 60_000
        let! timeout = durationBetween 1 (int interval.TotalMilliseconds - 1)
        let! rise = Gen.choose (1, 10)
        let! fall = Gen.choose (1, 10)
        let! spread = Gen.choose (0, Health.MaxSpread)
        let! userAgent = Gen.elements [ Config.DefaultUserAgent; "probe/2 (lb check)" ]
        return
            { Enabled = enabled
              Method = method
              Path = path
              Host = host
              Expected = expect
              Interval = interval
              Timeout = timeout
              Thresholds =
                (match Health.thresholds (rise, fall) with
                 | Ok t -> t
                 | Error e -> failwithf "%A" e)
              Spread = spread
              UserAgent = userAgent }
    }

/// App names that are valid and distinct; some are prefixes of others.
let private configAppNames = [ "app1"; "app2"; "app10"; "shop"; "a.b"; "x-y_z~" ]

/// Servers of one app, cookie values resolved as `Config` resolves them. Server names repeat across apps
/// (`s1` everywhere), so only the app name and address tell opaque values apart.
let private serversFor (appName: string) (appIndex: int) (mode: CookieValueMode) : Gen<ServerConfig array> =
    gen {
        let! n = Gen.choose (1, 4)
        let! servers =
            [ for i in 1 .. n ->
                  gen {
                      let! address =
                          Gen.elements
                              [ { Host = "127.0.0.1"; Port = 9000 + 10 * appIndex + i }
                                { Host = $"backend-{i}.internal"; Port = 8080 }
                                { Host = "::1"; Port = 9500 + i } ]
                      let! weight = Gen.frequency [ 1, Gen.constant 0; 8, Gen.choose (1, 5); 1, Gen.choose (6, 256) ]
                      let! configured =
                          match mode with
                          | CookieValueMode.Named -> Gen.frequency [ 3, Gen.constant None; 1, Gen.constant (Some $"c{i}") ]
                          | CookieValueMode.Opaque -> Gen.constant None
                      let! maxConn = Gen.frequency [ 3, Gen.constant None; 1, Gen.choose (1, 1000) |> Gen.map Some ]
                      let name = $"s{i}"
                      return
                          { Name = name
                            Address = address
                            Weight = weight
                            CookieValue = Cookies.cookieValueFor (mode, appName, name, string address, configured)
                            MaxConn = maxConn }
                  } ]
            |> Gen.sequenceToArray
        return servers
    }

/// A valid `max_request_body`: from one byte to the 1TB bound, in every unit, odd byte counts included.
let requestBodyLimit: Gen<int64> =
    Gen.frequency
        [ 3, Gen.elements [ 1L; 1000L; 64L <<< 10; 10L <<< 20; 40_000_000L; 1L <<< 30; 5L <<< 30; Config.MaxRequestBodyLimit ]
          1, Gen.choose (1, Int32.MaxValue) |> Gen.map int64 ]

/// A valid `max_request_headers`: 1KB to 1MB.
let requestHeadersLimit: Gen<int64> =
    Gen.frequency [ 2, Gen.elements [ 1L <<< 10; 8L <<< 10; 32L <<< 10; 1L <<< 20 ]; 1, Gen.choose (1024, 1 <<< 20) |> Gen.map int64 ]

/// One app that inherits or overrides the global persistence and health settings.
let private appConfig (globalPersistence: PersistenceConfig) (globalHealth: HealthCheckConfig) (index: int) (name: string) =
    gen {
        let! balance = Gen.elements [ BalanceAlgorithm.RoundRobin; BalanceAlgorithm.LeastConn; BalanceAlgorithm.RandomTwoChoices ]
        let! persistence = Gen.frequency [ 2, Gen.constant globalPersistence; 1, persistenceConfig ]
        let! health = Gen.frequency [ 2, Gen.constant globalHealth; 1, healthConfig ]
        let! servers = serversFor name index persistence.Mode
        let! cache = Gen.elements [ true; false ]
        let! maxRequestBody = Gen.frequency [ 3, Gen.constant None; 1, requestBodyLimit |> Gen.map Some ]
        return
            { Name = name
              Servers = servers
              Balance = balance
              Persistence = persistence
              Health = health
              Cache = cache
              MaxRequestBody = maxRequestBody
              Rules = [||] }
    }

/// A valid `[cache]`: sizes in every unit, with or without a disk store.
let cacheConfig: Gen<CacheConfig> =
    gen {
        let! memory = Gen.elements [ 64L <<< 10; 1L <<< 20; 256L <<< 20; 3L <<< 30 ]
        let! maxEntry = Gen.elements [ 1L <<< 10; 100L <<< 10; 1L <<< 20 ] |> Gen.map (min memory)
        let! dir = Gen.elements [ None; Some "/var/cache/lb" ]
        let! disk = if dir.IsSome then Gen.elements [ 1L <<< 20; 1L <<< 30; 2L <<< 40 ] else Gen.constant Config.defaultCache.DiskBytes
        let! header = Gen.elements [ true; false ]
        return { MemoryBytes = memory; MaxEntryBytes = maxEntry; Dir = dir; DiskBytes = disk; XCacheHeader = header }
    }

/// Stats password hashes, computed once (hashing is slow by design); none is a well-known password.
let private statsPasswords =
    lazy
        [| Password.hash ("correct horse battery staple", Array.init 16 byte, Password.MinIterations)
           Password.hash ("Tr0ub4dor&3", Array.init 16 (fun i -> byte (255 - i)), Password.MinIterations) |]

/// A valid `[stats]`, on an address no generated proxy listener uses.
let statsConfig: Gen<StatsConfig> =
    gen {
        let! listen = Gen.elements [ Config.DefaultStatsListen; { Host = "0.0.0.0"; Port = 9000 }; { Host = "::1"; Port = 8404 } ]
        let! realm = Gen.elements [ "lb stats"; "HAProxy Statistics"; "ops (lb1) 'x'" ]
        let! user = Gen.elements [ "admin"; "ops"; "stats-reader" ]
        let! hash = Gen.elements (statsPasswords.Force())
        let! refresh = durationBetween 1000 3_600_000
        let! window = durationBetween 1000 86_400_000
        return { Listen = listen; Realm = realm; User = user; PasswordHash = hash; Refresh = refresh; PinnedWindow = window }
    }

/// A valid `[log]`: the file path has quotes, a backslash and non-ASCII in it.
let logConfig: Gen<LogConfig> =
    Gen.elements
        [ AccessLogTarget.Stdout; AccessLogTarget.Off; AccessLogTarget.File "/var/log/lb/access.log"; AccessLogTarget.File "/var/log/lb/\"é\" \\ x.log" ]
    |> Gen.map (fun target -> { Access = target })

/// A valid `[[vrrp.track_script]]`; commands hold quotes, tabs, newlines and non-ASCII.
let trackScriptConfig: Gen<TrackScriptConfig> =
    gen {
        let! command = Gen.elements [ "/usr/local/bin/check"; "pidof lb"; "/bin/sh -c \"test -f /run/up\""; "echo é\t'x'\n"; "a\\b" ]
        let! interval = durationBetween 1 60_000
        let! weight = Gen.choose (-254, 254)
        let! rise = Gen.frequency [ 4, Gen.choose (1, 10); 1, Gen.constant 1000 ]
        let! fall = Gen.frequency [ 4, Gen.choose (1, 10); 1, Gen.constant 1000 ]
        return { Command = command; Interval = interval; Weight = weight; Rise = rise; Fall = fall }
    }

/// A valid `[vrrp]`, VRRPv2 (whole-second adverts, sometimes `auth_pass`) or VRRPv3 (10 ms steps).
let vrrpConfig: Gen<VrrpConfig> =
    gen {
        let! version = Gen.elements [ 2; 3 ]
        let! iface = Gen.elements [ "eth0"; "ens3"; "bond0.100" ]
        let! routerId = Gen.choose (1, 255)
        let! priority = Gen.choose (1, 255)
        let! advert =
            if version = 2 then Gen.choose (1, 255) |> Gen.map (fun s -> ms (s * 1000))
            else Gen.choose (1, 4095) |> Gen.map (fun cs -> ms (cs * 10))
        let! vips = Gen.elements [ [| "192.0.2.100/24" |]; [| "192.0.2.100/24"; "198.51.100.7" |] ]
        let! preempt = Gen.elements [ true; false ]
        let! preemptDelay = Gen.frequency [ 2, Gen.constant TimeSpan.Zero; 1, durationBetween 1 300_000 ]
        let! garpDelay = durationBetween 1 10_000
        let! garpRepeat = Gen.choose (1, 100)
        let! garpRefresh = Gen.frequency [ 2, Gen.constant TimeSpan.Zero; 1, durationBetween 1000 600_000 ]
        let! peers = Gen.elements [ [||]; [| "192.0.2.12" |]; [| "192.0.2.12"; "192.0.2.13" |] ]
        let! trackInterfaces = Gen.elements [ [||]; [| "eth1" |]; [| "eth1"; "eth2" |] ]
        let! trackSelf = Gen.elements [ Some 2; None; Some -10; Some 254 ]
        let! scripts = Gen.listOf trackScriptConfig |> Gen.resize 3 |> Gen.map Array.ofList
        let! auth = if version = 2 then Gen.elements [ None; Some "secret1"; Some "p\"w\\1"; Some "12345678" ] else Gen.constant None
        return
            { Interface = iface
              VirtualRouterId = routerId
              Priority = priority
              AdvertInterval = advert
              Version = version
              VirtualIps = vips
              Preempt = preempt
              PreemptDelay = preemptDelay
              GarpMasterDelay = garpDelay
              GarpMasterRepeat = garpRepeat
              GarpMasterRefresh = garpRefresh
              UnicastPeers = peers
              TrackInterfaces = trackInterfaces
              TrackSelfWeight = trackSelf
              TrackScripts = scripts
              AuthPassword = auth }
    }

// ---- Rules ----------------------------------------------------------------------------------------

let private loaded (result: Result<'T, string>) =
    match result with
    | Ok v -> v
    | Error e -> failwithf "generator made an invalid value: %s" e

/// A regex config accepts (linear-time, no lookarounds).
let rulePattern: Gen<Pattern> =
    Gen.elements [ "^/api/v[0-9]+/"; "\\.php$"; "(?i)admin"; "^curl/"; "é|\\\\"; "^$" ] |> Gen.map (RequestRules.pattern >> loaded)

/// Networks in both families, single hosts included.
let cidrs: Gen<Cidr list> =
    Gen.elements [ "10.0.0.0/8"; "192.168.1.7"; "192.0.2.0/24"; "2001:db8::/32"; "::1"; "0.0.0.0/0" ]
    |> Gen.map (RequestRules.cidr >> loaded)
    |> Gen.nonEmptyListOf
    |> Gen.resize 3
    |> Gen.map List.distinct

let private valueTest: Gen<ValueTest> =
    Gen.oneof
        [ Gen.constant ValueTest.Present
          Gen.elements [ "1"; "yes"; "a \"quoted\" \\ value"; "é"; "" ] |> Gen.map ValueTest.Equals
          rulePattern |> Gen.map ValueTest.Matches ]

/// A condition with nesting up to `depth` (all / any / not).
let rec ruleCondition (depth: int) : Gen<Condition> =
    let leaf =
        Gen.oneof
            [ Gen.elements [ "/admin"; "/api/"; "/"; "/a b"; "/é" ] |> Gen.map Condition.PathPrefix
              Gen.elements [ "admin"; "beta"; "x.y"; "%2F" ] |> Gen.map Condition.PathSegment
              rulePattern |> Gen.map Condition.PathMatches
              Gen.elements [ "www.example.com"; "API.example.com"; "localhost"; "site.example" ] |> Gen.map Condition.Host
              Gen.elements [ [ "GET" ]; [ "POST"; "PUT" ]; [ "PURGE" ] ] |> Gen.map Condition.Method
              Gen.map2 (fun n t -> Condition.Header(n, t)) (Gen.elements [ "X-Beta"; "x-env"; "User-Agent" ]) valueTest
              Gen.map2 (fun n t -> Condition.Cookie(n, t)) (Gen.elements [ "beta"; "SESSION" ]) valueTest
              cidrs |> Gen.map Condition.Source ]
    if depth <= 0 then
        leaf
    else
        let inner = ruleCondition (depth - 1)
        Gen.frequency
            [ 4, leaf
              1, Gen.nonEmptyListOf inner |> Gen.resize 3 |> Gen.map Condition.All
              1, Gen.nonEmptyListOf inner |> Gen.resize 3 |> Gen.map Condition.Any
              1, inner |> Gen.map Condition.Not ]

/// Header edits in the order config reads them back: sets, then adds, then removes, names distinct in each.
let headerEdits: Gen<HeaderEdit list> =
    let names = [ "X-Env"; "X-Beta"; "Cache-Control"; "x-trace"; "X-Odd.Name!" ]
    let values = [ "beta"; "no-store"; "a \"b\" \\ c"; "1" ]
    let some make =
        Gen.subListOf names
        |> Gen.bind (fun ns -> Gen.listOfLength ns.Length (Gen.elements values) |> Gen.map (List.map2 (fun n v -> make (n, v)) ns))
    gen {
        let! sets = some HeaderEdit.Set
        let! adds = some HeaderEdit.Add
        let! removes = Gen.subListOf names |> Gen.map (List.map HeaderEdit.Remove)
        return sets @ adds @ removes
    }
    |> Gen.resize 2

/// A `then`: deny, redirect, or a forward that may `route` (global rules) and `pin` to `servers` of that app.
let ruleAction (routes: (string * string list) list) (servers: string list) : Gen<RuleAction> =
    let forward =
        gen {
            let! route = if routes.IsEmpty then Gen.constant None else Gen.elements (None :: (routes |> List.map Some))
            let pinnable =
                match route with
                | Some(_, s) -> s
                | None -> servers
            let! pin = if pinnable.IsEmpty then Gen.constant [] else Gen.subListOf pinnable |> Gen.map List.distinct
            let! request = headerEdits
            let! response = headerEdits
            return RuleAction.Forward { Route = route |> Option.map fst; Pin = pin; RequestHeaders = request; ResponseHeaders = response }
        }
    Gen.frequency
        [ 2, Gen.elements [ 403; 404; 429; 503; 400; 599 ] |> Gen.map RuleAction.Deny
          1,
          Gen.map2
              (fun s l -> RuleAction.Redirect(s, l))
              (Gen.elements [ 301; 302; 303; 307; 308 ])
              (Gen.elements [ "/maintenance.html"; "https://${host}/new${path}${query}"; "http://example.com/"; "${path}/" ])
          3, forward ]

/// A list of rules named as config names them (`{path}[i]`); only the last may be unconditional, as config refuses
/// a rule after an unconditional one, and none when `mayEndUnconditional` is false (global rules before app rules).
let ruleListWith (mayEndUnconditional: bool) (path: string) (routes: (string * string list) list) (servers: string list) : Gen<Rule array> =
    gen {
        let! n = Gen.frequency [ 2, Gen.constant 0; 3, Gen.choose (1, 4) ]
        let! rules =
            [ for i in 0 .. n - 1 ->
                  gen {
                      let! condition =
                          if i = n - 1 && mayEndUnconditional then
                              Gen.frequency [ 1, Gen.constant Condition.Always; 5, ruleCondition 2 ]
                          else
                              ruleCondition 2
                      let! action = ruleAction routes servers
                      return { Name = $"{path}[{i}]"; When = condition; Then = action }
                  } ]
            |> Gen.sequenceToArray
        return rules
    }

/// `ruleListWith` where the last rule may be unconditional.
let ruleList (path: string) (routes: (string * string list) list) (servers: string list) : Gen<Rule array> =
    ruleListWith true path routes servers

/// What a request shows rules: methods, hosts with and without ports, paths rules look for, headers and cookies
/// rules read (some twice, some quoted), clients in and out of the generated networks (IPv4-mapped included).
let ruleRequest: Gen<RuleRequest> =
    gen {
        let! method = Gen.elements [ "GET"; "POST"; "PUT"; "PURGE"; "get" ]
        let! host = Gen.elements [ "www.example.com"; "API.EXAMPLE.COM:8443"; "localhost"; "[::1]:443"; "site.example" ]
        let! path = Gen.elements [ "/"; "/admin"; "/admin/x"; "/administrator"; "/api/v2/users"; "/index.php"; "/a b/é"; "/beta/x.y"; "/%2F" ]
        let! headers =
            Gen.subListOf
                [ "X-Beta", "1"
                  "x-beta", "0"
                  "X-Env", "beta"
                  "User-Agent", "curl/8.5"
                  "Cookie", "beta=yes; SESSION=1"
                  "Cookie", "SESSION=a \"quoted\" \\ value" ]
        let! client =
            Gen.elements [ None; Some "10.1.2.3"; Some "192.168.1.7"; Some "::1"; Some "::ffff:10.0.0.1"; Some "2001:db8::5"; Some "203.0.113.7" ]
        let! query = Gen.elements [ ""; "?a=1" ]
        return
            { Method = method
              Host = host
              Path = path
              PublicPath = path
              Query = query
              Headers = Array.ofList headers
              Client = client |> Option.bind RequestRules.clientAddress }
    }

/// A valid `LbConfig`: random apps, servers, balance, persistence and health (global and per app), limits,
/// error pages, cache, stats, log and VRRP, with hostile text wherever config accepts any text.
/// `Config.parseText (TomlRender.render c)` gives it back (the round-trip property in RenderTests).
let lbConfig: Gen<LbConfig> =
    gen {
        let! node = Gen.elements [ "lb"; "lb1"; "lb-b"; "lb \"one\"\t\\ é\u0001" ]
        let! reloadOnChange = Gen.elements [ true; false ]
        let! warmUp = Gen.elements [ TimeSpan.Zero; TimeSpan.FromMilliseconds 500.0; TimeSpan.FromSeconds 5.0; TimeSpan.FromSeconds 60.0 ]
        let! http = Gen.elements [ None; Some { Host = "127.0.0.1"; Port = 18080 }; Some { Host = "*"; Port = 80 } ]
        let! https = Gen.elements [ None; Some { Host = "127.0.0.1"; Port = 18443 }; Some { Host = "::"; Port = 443 } ]
        let! https = if http.IsNone && https.IsNone then Gen.constant (Some { Host = "127.0.0.1"; Port = 18443 }) else Gen.constant https
        let! plain = Gen.elements [ PlainHttpMode.RedirectToHttps; PlainHttpMode.Proxy ]
        let! redirectStatus = Gen.elements [ 301; 302; 303; 307; 308 ]
        let! chain = Gen.elements [ None; Some "/etc/lb/chain.pem" ]
        let! tlsAnyway = Gen.elements [ true; false ]
        let tls = if https.IsSome || tlsAnyway then Some { Cert = "/etc/lb/lb.crt"; Key = "/etc/lb/lb.key"; Chain = chain } else None
        let! retries = Gen.choose (0, 10)
        let! redispatch = Gen.elements [ true; false ]
        let! connect = durationBetween 1 10_000
        let! client = durationBetween 1 120_000
        let! server = durationBetween 1 120_000
        let! maxConn = Gen.frequency [ 1, Gen.constant 2000; 2, Gen.choose (1, 100_000) ]
        let! queue = durationBetween 1 30_000
        let! retryOnTimeout = Gen.elements [ true; false ]
        let! shutdown = durationBetween 1 120_000
        let! encodedSlashes = Gen.elements [ EncodedSlashes.Reject; EncodedSlashes.Keep; EncodedSlashes.Decode ]
        let! maxRequestBody = requestBodyLimit
        let! maxRequestHeaders = requestHeadersLimit
        let! persistence = persistenceConfig
        let! health = healthConfig
        let! appCount = Gen.choose (1, 4)
        let! names = Gen.shuffle configAppNames |> Gen.map (Array.truncate appCount)
        let! apps = names |> Array.mapi (appConfig persistence health) |> Gen.sequenceToArray
        let serverNames (a: AppConfig) = a.Servers |> Array.map (fun s -> s.Name) |> List.ofArray
        let! apps =
            apps
            |> Array.map (fun a -> ruleList $"apps.{a.Name}.rules" [] (serverNames a) |> Gen.map (fun rules -> { a with Rules = rules }))
            |> Gen.sequenceToArray
        // A global rule without `when` would leave every app rule unreachable, which config refuses.
        let appsHaveRules = apps |> Array.exists (fun a -> a.Rules.Length > 0)
        let! rules = ruleListWith (not appsHaveRules) "rules" [ for a in apps -> a.Name, serverNames a ] []
        let! pages =
            Gen.shuffle Config.errorPageStatuses
            |> Gen.bind (fun all -> Gen.choose (0, all.Length) |> Gen.map (fun n -> Array.truncate n all))
        let! cache = cacheConfig
        // One config in eight has stats: loading it hashes every well-known password (about 15 PBKDF2 runs).
        let! stats = Gen.frequency [ 7, Gen.constant None; 1, statsConfig |> Gen.map Some ]
        let! log = logConfig
        let! vrrp = Gen.frequency [ 1, Gen.constant None; 1, vrrpConfig |> Gen.map Some ]
        return
            { Node = { Name = node; ReloadOnChange = reloadOnChange; WarmUp = warmUp }
              Listen = { Http = http; Https = https; PlainHttp = plain; RedirectStatus = redirectStatus }
              Tls = tls
              Defaults =
                { Retries = retries
                  Redispatch = redispatch
                  TimeoutConnect = connect
                  TimeoutClient = client
                  TimeoutServer = server
                  MaxConn = maxConn
                  TimeoutQueue = queue
                  RetryOnTimeout = retryOnTimeout
                  TimeoutShutdown = shutdown
                  EncodedSlashes = encodedSlashes
                  MaxRequestBody = maxRequestBody
                  MaxRequestHeaders = maxRequestHeaders }
              Apps = apps
              ErrorPages = pages |> Array.map (fun s -> s, $"/srv/errors/{s}.html")
              Stats = stats
              Log = log
              Vrrp = vrrp
              Cache = cache
              Rules = rules }
    }

// ---- Reload ---------------------------------------------------------------------------------------------

/// A running config and an edit of it, as an operator makes one: apps dropped, servers reordered, dropped,
/// moved to another port or reweighted, listeners or other sections sometimes changed too.
let reloadPair: Gen<LbConfig * LbConfig> =
    let editServer (s: ServerConfig) =
        Gen.frequency
            [ 6, Gen.constant s
              1, Gen.constant { s with Address = { s.Address with Port = s.Address.Port + 1 } }
              1, Gen.choose (1, 9) |> Gen.map (fun w -> { s with Weight = w }) ]
    let editApp (a: AppConfig) =
        gen {
            let! servers = a.Servers |> Array.map editServer |> Gen.sequenceToArray
            let! shuffled = Gen.shuffle servers
            let! keep = Gen.choose (1, shuffled.Length)
            return { a with Servers = Array.truncate keep shuffled }
        }
    gen {
        let! old = lbConfig
        let! other = lbConfig
        let! apps = old.Apps |> Array.map editApp |> Gen.sequenceToArray
        let! keep = Gen.choose (1, apps.Length)
        let edited = { old with Apps = Array.truncate keep apps }
        // Sometimes a wholly different config: same app and server names, other addresses and sections.
        return! Gen.frequency [ 4, Gen.constant (old, edited); 1, Gen.constant (old, other) ]
    }

/// A generated config with an app whose persistence is on, and that app's index.
let configWithPersistentApp: Gen<LbConfig * int> =
    lbConfig
    |> Gen.filter (fun c -> c.Apps |> Array.exists (fun a -> a.Persistence.Cookie.IsSome))
    |> Gen.bind (fun c ->
        let on = c.Apps |> Array.indexed |> Array.filter (fun (_, a) -> a.Persistence.Cookie.IsSome) |> Array.map fst
        Gen.elements on |> Gen.map (fun i -> c, i))

// ---- Writing a config back as TOML ------------------------------------------------------------------

/// The production renderer, under the name the older properties use.
let toToml (c: LbConfig) : string = TomlRender.render c

// ---- HTTP cache (CachePolicy) -------------------------------------------------------------------------

/// An app for cache requests: `routingConfig`'s first app (persistence cookie SRVID) under another name.
let cacheApp (name: string) : AppConfig = { routingConfig.Apps[0] with Name = name; Cache = true }

/// A moment with whole seconds (HTTP-dates have no fraction), within a few years of 2025.
let httpMoment: Gen<DateTimeOffset> =
    Gen.choose (0, 100_000_000) |> Gen.map (fun s -> DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero).AddSeconds(float s))

/// Any text, `:` and digits included, for key parts: keys must stay apart whatever the parts hold.
let keyPart: Gen<string> =
    Gen.frequency
        [ 3, Gen.elements [ ""; "a"; "app1"; "1:"; ":"; "1:a"; "x|y"; "GET"; "/p?q=1"; "é"; "0:1:2" ]
          2, ArbMap.defaults |> ArbMap.generate<string> |> Gen.map (fun (s: string) -> if String.IsNullOrEmpty s then "" else s) ]

/// Cache-Control directives a storable response may carry (no private, no no-store: properties add those).
let private responseDirective: Gen<string> =
    Gen.oneof
        [ Gen.elements [ "public"; "no-cache"; "must-revalidate"; "proxy-revalidate"; "immutable"; "no-transform" ]
          Gen.choose (0, 100_000) |> Gen.map (fun s -> $"max-age={s}")
          Gen.choose (0, 100_000) |> Gen.map (fun s -> $"s-maxage={s}")
          Gen.choose (0, 100) |> Gen.map (fun s -> $"stale-while-revalidate={s}") ]

/// Response header lines around caching: Cache-Control, Expires (valid or not), Date, validators, Vary
/// (never `*`), Content-Type, Age.
let cacheResponseHeaders: Gen<(string * string) array> =
    gen {
        let! date = httpMoment
        let! directives = Gen.listOf responseDirective |> Gen.resize 3 |> Gen.map List.distinct
        let! expires = Gen.elements [ None; Some "0"; Some "+"; Some "-" ]
        let! etag = Gen.elements [ None; Some "\"v1\""; Some "W/\"v2\"" ]
        let! modified = Gen.elements [ None; Some(CachePolicy.formatDate (date.AddDays -1.0)) ]
        let! vary = Gen.elements [ None; Some "Accept-Encoding"; Some "Cookie"; Some "accept-language, Cookie" ]
        let! age = Gen.elements [ None; Some "0"; Some "30"; Some "junk" ]
        return
            [| if not directives.IsEmpty then "Cache-Control", String.Join(", ", directives)
               match expires with
               | Some "+" -> "Expires", CachePolicy.formatDate (date.AddHours 1.0)
               | Some "-" -> "Expires", CachePolicy.formatDate (date.AddHours -1.0)
               | Some other -> "Expires", other
               | None -> ()
               "Date", CachePolicy.formatDate date
               "Content-Type", "text/html"
               yield! etag |> Option.map (fun e -> "ETag", e) |> Option.toArray
               yield! modified |> Option.map (fun m -> "Last-Modified", m) |> Option.toArray
               yield! vary |> Option.map (fun v -> "Vary", v) |> Option.toArray
               yield! age |> Option.map (fun a -> "Age", a) |> Option.toArray |]
    }

/// A response: any status lb may meet, with `cacheResponseHeaders`.
let cacheResponse: Gen<CacheResponse> =
    gen {
        let! status = Gen.elements [ 200; 200; 200; 203; 204; 206; 301; 302; 304; 307; 308; 404; 410; 500; 502; 503 ]
        let! headers = cacheResponseHeaders
        return { Status = status; Headers = headers }
    }

/// A GET or HEAD request of app `app1` (or another app) with headers a browser or a client library sends.
let cacheRequestOf (appName: string) : Gen<CacheRequest> =
    gen {
        let! methodName = Gen.frequency [ 4, Gen.constant "GET"; 1, Gen.constant "HEAD" ]
        let! scheme = Gen.elements [ "https"; "http"; "HTTPS" ]
        let! host = Gen.elements [ "site.example"; "Site.Example:8443"; "127.0.0.1:8443" ]
        let! target = Gen.elements [ "/"; "/x"; "/x?y=1"; "/a%2Fb"; "/é" ]
        let! cookie = Gen.elements [ None; Some "user=alice"; Some "user=alice; SRVID=app1_1"; Some "SRVID=app1_2" ]
        let! encoding = Gen.elements [ None; Some "gzip"; Some "br, gzip" ]
        let! authorization = Gen.frequency [ 4, Gen.constant None; 1, Gen.constant (Some "Basic dTpw") ]
        let! cacheControl = Gen.elements [ None; Some "max-age=0"; Some "no-cache"; Some "max-stale=60" ]
        return
            { App = cacheApp appName
              Method = methodName
              Scheme = scheme
              Host = host
              Target = target
              Headers =
                [| yield! cookie |> Option.map (fun c -> "Cookie", c) |> Option.toArray
                   yield! encoding |> Option.map (fun e -> "Accept-Encoding", e) |> Option.toArray
                   yield! authorization |> Option.map (fun a -> "Authorization", a) |> Option.toArray
                   yield! cacheControl |> Option.map (fun c -> "Cache-Control", c) |> Option.toArray |] }
    }

let cacheRequest: Gen<CacheRequest> = Gen.elements appNames |> Gen.bind cacheRequestOf

/// Age field lines that are not one delta-seconds (RFC 9111 §5.1): lists (in one line or two), signs,
/// fractions, quotes, words, empty.
let invalidAge: Gen<string array> =
    Gen.elements
        [ [| "7200, 0" |]; [| "0, 7200" |]; [| "0,0" |]; [| "junk" |]; [| "-1" |]; [| "1.5" |]; [| "" |]; [| "0x10" |]
          [| "+5" |]; [| "5 s" |]; [| "\"5\"" |]; [| "10"; "0" |]; [| "0"; "0" |] ]

/// A moment in each form of RFC 9110 §5.6.7: IMF-fixdate, rfc850-date and asctime-date (one-digit days padded
/// with a space).
let httpDateForms (d: DateTimeOffset) : string list =
    let inv = Globalization.CultureInfo.InvariantCulture
    [ d.ToString("r", inv)
      d.ToString("dddd, dd'-'MMM'-'yy HH':'mm':'ss 'GMT'", inv)
      d.ToString("ddd MMM ", inv) + d.Day.ToString(inv).PadLeft 2 + d.ToString(" HH':'mm':'ss yyyy", inv) ]

/// A valid HTTP-date (any form) spoiled in one way RFC 9110 §5.6.7 does not allow: a space doubled or made a
/// tab, the names lower-cased, another zone, the wrong day name, or text after it.
let spoiledHttpDate: Gen<DateTimeOffset * string> =
    gen {
        let! d = httpMoment
        let! form = Gen.elements (httpDateForms d)
        let spaces = form |> Seq.indexed |> Seq.filter (fun (_, c) -> c = ' ') |> Seq.map fst |> List.ofSeq
        let! space = Gen.elements spaces
        let otherDay = d.AddDays(float 1).ToString("ddd", Globalization.CultureInfo.InvariantCulture)
        let! spoiled =
            Gen.elements
                [ form.Insert(space, " ")
                  form.Remove(space, 1).Insert(space, "\t")
                  form.ToLowerInvariant()
                  form.ToUpperInvariant()
                  (if form.EndsWith " GMT" then form.Replace(" GMT", " UTC") else form + " GMT")
                  (if form.EndsWith " GMT" then form.Replace(" GMT", " +0000") else form + " +0000")
                  otherDay + form.Substring(3)
                  form + " x"
                  (if form.Contains ',' then form.Replace(",", " ,") else form.Replace(" ", "")) ]
        return d, spoiled
    }

/// delta-seconds of 2^31 and beyond (RFC 9111 §1.2.2), leading zeros and 30 digits included.
let hugeDeltaSeconds: Gen<string> =
    Gen.oneof
        [ Gen.choose (0, Int32.MaxValue) |> Gen.map (fun n -> string (2147483648L + int64 n))
          Gen.elements [ "2147483648"; "02147483648"; "9999999999"; "18446744073709551616"; String('9', 30) ] ]

// ---- Hostile requests (issue 8) -------------------------------------------------------------------

/// Header values a hostile client sends: CR/LF/NUL injection, Unicode, empty, and oversize (64 KiB, beyond any
/// header a browser sends).
let hostileHeaderValue: Gen<string> =
    Gen.frequency
        [ 6, anyText
          1, Gen.elements [ ""; " "; "\u0000"; "a\u0000b"; "x\r\nX-Injected: 1"; "日本語"; "😀"; "\u202Eevil" ]
          1, Gen.map2 (fun (c: char) n -> String(c, n)) (Gen.elements [ 'a'; '%'; 'é'; '\r' ]) (Gen.choose (8_000, 32_768)) ]

/// Persistence cookie values a client forges: other apps' server values (named and opaque), near misses of this
/// app's (case, quotes, spaces, a suffix), garbage, overlong and Unicode. Which ones are this app's real values
/// is for the property to find out, not the generator.
let forgedPersistenceValue (ownValues: string[]) (otherValues: string[]) : Gen<string> =
    let nearMiss (v: string) =
        Gen.elements [ v.ToUpperInvariant(); "\"" + v + "\""; v + " "; " " + v; v + "x"; v.Substring(0, max 0 (v.Length - 1)); v + "\u0000"; v + "\r\n" ]
    Gen.frequency
        [ 3, Gen.elements otherValues
          3, Gen.elements ownValues |> Gen.bind nearMiss
          2, cookieValue
          1, anyText
          1, Gen.choose (4_097, 20_000) |> Gen.map (fun n -> String('A', n))
          1, Gen.elements [ ""; "app1_1\u00A0"; "ａｐｐ１_1"; "app1_1;SRVID=app2_1"; "../app1_1"; "%61pp1_1" ]
          1, Gen.elements ownValues ] // sometimes the real thing: the law must hold for it too

/// `Cookie:` header values carrying `values` under the persistence name among hostile neighbours, split over one
/// to three field lines (HTTP/2 may split the field, RFC 9113 §8.2.3).
let cookieHeadersWith (name: string) (values: string list) : Gen<string[]> =
    gen {
        let! neighbours = hostileCookies 0 |> Gen.resize 8
        let! pairs =
            values
            |> List.fold
                (fun acc v ->
                    acc |> Gen.bind (fun ps -> Gen.choose (0, List.length ps) |> Gen.map (fun at -> List.insertAt at { Name = name; Value = v } ps)))
                (Gen.constant neighbours)
        let! lines = Gen.choose (1, 3)
        let chunk = max 1 ((pairs.Length + lines - 1) / lines)
        let! headers = pairs |> List.chunkBySize chunk |> List.map headerOf |> Gen.sequenceToArray
        return if headers.Length = 0 then [| "" |] else headers
    }

/// Header names a hostile client repeats or forges: the ones lb reads or sets itself, duplicated.
let private hostileHeaderName: Gen<string> =
    Gen.elements
        [ "Cookie"; "cookie"; "X-Forwarded-For"; "X-Forwarded-Host"; "X-Forwarded-Prefix"; "X-Forwarded-Proto"; "Host"
          "Transfer-Encoding"; "Content-Length"; "Connection"; "X-Env"; "X\r\nInjected"; "X\u0000Nul"; "" ]

/// Request header field lines: duplicates of the headers lb cares about, with hostile values.
let hostileHeaders: Gen<(string * string) array> =
    Gen.zip hostileHeaderName hostileHeaderValue |> Gen.listOf |> Gen.resize 6 |> Gen.map Array.ofList

/// Request targets beyond `hostilePath`: overlong paths, non-ASCII (raw and encoded), absolute-form with another
/// host, `*`, empty, and paths with raw CR/LF/NUL a lenient parser might let through.
let hostileTarget: Gen<string> =
    Gen.frequency
        [ 8, Gen.map2 (+) hostilePath query
          1, Gen.map2 (fun app n -> "/" + app + "/" + String.replicate n "a/../") (Gen.elements appNames) (Gen.choose (1, 2_000))
          1, Gen.map2 (fun app n -> "/" + app + "/" + String('x', n)) (Gen.elements appNames) (Gen.choose (4_000, 16_000))
          1, Gen.elements [ "/app1/日本"; "/%E6%97%A5/app1/"; "/app1/%C0%AE%C0%AE/app2/"; "/app1/%c0%2f"; "/ａｐｐ１/x"; "/app1/\u00A0" ]
          1, Gen.map2 (fun host path -> host + path) (Gen.elements [ "http://evil.example"; "https://127.0.0.1:1"; "HTTP://x"; "ftp://x"; "//evil" ]) hostilePath
          1, Gen.elements [ "*"; ""; "app1/x"; "/app1/\r\nX: y"; "/app1/\u0000"; "/app1/ x"; "?/app1/" ] ]

/// A whole hostile request as the shell hands it to `Routing.decide`: hostile target, Host, method, a forged
/// X-Forwarded-For, and hostile header lines (cookies included).
let hostileRequest: Gen<RequestFacts> =
    gen {
        let! isHttps = Gen.frequency [ 4, Gen.constant true; 1, Gen.constant false ]
        let! target = hostileTarget
        let! host = Gen.frequency [ 4, Gen.elements [ "site.example"; "site.example:8443"; "[::1]:8443"; "127.0.0.1" ]; 1, hostileHeaderValue ]
        let! method = Gen.elements [ "GET"; "POST"; "HEAD"; "DELETE"; "PURGE"; "get"; "G\u0000T"; "" ]
        let! xff = Gen.frequency [ 2, Gen.constant None; 1, hostileHeaderValue |> Gen.map Some ]
        let! headers = hostileHeaders
        return
            { IsHttps = isHttps
              Host = host
              Method = method
              RawTarget = target
              ClientAddress = "192.0.2.1"
              ForwardedFor = xff
              Headers = headers }
    }

// ---- Privileges -------------------------------------------------------------------------------------

/// `net.ipv4.ip_unprivileged_port_start`: 0 (every port free), the listeners' ports and their neighbours, the
/// kernel's 1024, and above every generated port.
let unprivilegedPortStart: Gen<int> =
    Gen.frequency [ 3, Gen.elements [ 0; 80; 81; 443; 444; 1024; 18080; 18443; 65535 ]; 1, Gen.choose (0, 65535) ]

/// A CapEff mask: any subset of lb's three capabilities, plus unrelated bits (CAP_CHOWN 0, CAP_SYS_ADMIN 21, high bits).
let capabilityMask: Gen<uint64> =
    gen {
        let! ours = Gen.subListOf [ 10; 12; 13 ]
        let! others = Gen.subListOf [ 0; 1; 11; 14; 21; 40 ]
        return ours @ others |> List.fold (fun mask bit -> mask ||| (1UL <<< bit)) 0UL
    }

/// The idle input of `Selection.first` with health `up` per server (index-aligned; a missing entry is down),
/// everything Ready and empty, `redispatch` on.
let selectionWith (app: AppConfig) (up: bool array) : SelectionInput =
    { Selection.idle (app, [||], true, DateTimeOffset.UnixEpoch) with
        Servers = Array.init app.Servers.Length (fun i -> { Up = i < up.Length && up[i]; Admin = AdminState.Ready; Active = 0; HasFreeSlot = true }) }

/// The first choice for these Cookie headers with the servers `up` (as `selectionWith`).
let firstChoice (app: AppConfig) (headers: string array) (up: bool array) : Selection =
    (Selection.first (selectionWith app up, headers)).Selection

/// Runs a law over `cases` generated values and counts how often `interesting` held, so a law cannot pass
/// only on cases that never reach its point (a coverage guard).
let checkWithCoverage (cases: int) (g: Gen<'T>) (law: 'T -> bool) (interesting: 'T -> bool) : int64 =
    let hits = ref 0L
    let counted value =
        if interesting value then System.Threading.Interlocked.Increment &hits.contents |> ignore
        law value
    Check.One(Config.QuickThrowOnFailure.WithMaxTest cases, Prop.forAll (Arb.fromGen g) counted)
    hits.Value
