namespace Lb.Rules

open System
open System.Globalization

/// A request of a cached app as the cache sees it, after routing.
type CacheRequest =
    { App: AppConfig
      Method: string
      /// `http` or `https`. Part of the target URI (RFC 9111 §2), and Location rewrites depend on it.
      Scheme: string
      /// The Host header. Part of the target URI, and Location rewrites depend on it.
      Host: string
      /// Path and query as the backend sees them (`ForwardPlan.BackendTarget`); with the app, the public target.
      Target: string
      /// Every request header field line as (name, value).
      Headers: (string * string) array }

/// A response as the cache sees it: status and header field lines as lb sends them to the client (after
/// the prefix rewrites, without a persistence cookie lb inserted: that cookie belongs to one client).
type CacheResponse =
    { Status: int
      Headers: (string * string) array }

/// A stored response without its body, and when it was obtained (RFC 9111 §4.2.3 `request_time`, the moment
/// the request went to the backend, and `response_time`, the moment its response arrived).
type StoredResponse =
    { Response: CacheResponse
      RequestTime: DateTimeOffset
      ResponseTime: DateTimeOffset }

/// The Cache-Control directives of one message (RFC 9111 §5.2), read from all its field lines.
type CacheDirectives =
    { NoStore: bool
      NoCache: bool
      Private: bool
      Public: bool
      MustRevalidate: bool
      ProxyRevalidate: bool
      MaxAge: TimeSpan option
      SharedMaxAge: TimeSpan option
      /// Request `max-stale` (§5.2.1.2): None when absent, Some None for any staleness, Some(Some t) up to t.
      MaxStale: TimeSpan option option
      MinFresh: TimeSpan option
      OnlyIfCached: bool
      /// `stale-while-revalidate` (RFC 5861 §3, a response directive): how long past its lifetime a response may
      /// be served while one revalidation runs in the background.
      StaleWhileRevalidate: TimeSpan option
      /// `stale-if-error` (RFC 5861 §4, request or response): how long past its lifetime a response may be
      /// served when the backend fails (500, 502, 503, 504 or no response).
      StaleIfError: TimeSpan option
      /// The field is present but does not parse: a response with it is not stored.
      Malformed: bool
      /// `max-age` or `s-maxage` appears twice: RFC 9111 §4.2.1 lets the response count as stale.
      Conflicting: bool }

/// Whether a response may go into the cache.
[<RequireQualifiedAccess>]
type Storability =
    | Store
    | DoNotStore of why: string

/// What a request of a cached app does, known before any lookup.
[<RequireQualifiedAccess>]
type CacheRequestKind =
    /// GET or HEAD: look it up, and store the response if it is storable.
    | Cacheable
    /// A method that may change the resource (RFC 9110 §9.2.1 unsafe): forward it, then invalidate the target.
    | Unsafe
    /// Neither looked up nor stored (a Range request, OPTIONS, TRACE).
    | Uncached of why: string

/// The decision for a cacheable request, given what the store holds for its key.
[<RequireQualifiedAccess>]
type CacheUse =
    /// Answer from the stored response (X-Cache: HIT). `notModified`: the client's own conditional matched,
    /// so the answer is a 304 (RFC 9111 §4.3.2).
    | Hit of age: TimeSpan * notModified: bool
    /// Answer from the stale stored response at once (X-Cache: STALE), within its `stale-while-revalidate` (RFC
    /// 5861 §3), and have one request revalidate it in the background: that request says `max-age=0`, so its
    /// own decision is Validate (or Miss without validators). `notModified` as for Hit.
    | HitWhileRevalidating of age: TimeSpan * notModified: bool
    /// Ask the backend with these conditional headers; a 304 refreshes the stored response (RFC 9111 §4.3.1).
    | Validate of conditionals: (string * string) array
    /// Forward as usual (X-Cache: MISS); a storable response replaces what is stored.
    | Miss of why: string
    /// `only-if-cached` and nothing usable is stored: answer 504 without asking a backend (RFC 9111 §5.2.1.7).
    | GatewayTimeout

/// RFC 9111 for a shared cache in front of the apps: what may be stored, the cache key, freshness and age,
/// revalidation and the 304 merge. Pure: the time comes in as an argument; the store is the shell's.
[<RequireQualifiedAccess>]
module CachePolicy =

    // ---- Header fields ------------------------------------------------------------------------------

    let private named (name: string) (n: string, _: string) = String.Equals(n, name, StringComparison.OrdinalIgnoreCase)

    /// Every value of the field `name` (case-insensitive, RFC 9110 §5.1), in order.
    let values (name: string) (headers: (string * string) array) : string array =
        headers |> Array.filter (named name) |> Array.map snd

    /// The field's combined value (RFC 9110 §5.3: lines joined with ", "), or None when absent.
    let combined (name: string) (headers: (string * string) array) : string option =
        match values name headers with
        | [||] -> None
        | vs -> Some(String.Join(", ", vs))

    let private has name headers = headers |> Array.exists (named name)

    /// Splits a list field on commas outside quoted strings (RFC 9110 §5.6.1, §5.6.4).
    let private listMembers (text: string) : string list =
        let members = Collections.Generic.List<string>()
        let current = Text.StringBuilder()
        let mutable quoted = false
        let mutable escaped = false
        for c in text do
            if escaped then
                current.Append c |> ignore
                escaped <- false
            elif quoted && c = '\\' then
                current.Append c |> ignore
                escaped <- true
            elif c = '"' then
                current.Append c |> ignore
                quoted <- not quoted
            elif c = ',' && not quoted then
                members.Add(current.ToString().Trim())
                current.Clear() |> ignore
            else
                current.Append c |> ignore
        members.Add(current.ToString().Trim())
        members |> Seq.filter (fun m -> m <> "") |> List.ofSeq

    // ---- Dates and delta-seconds --------------------------------------------------------------------

    let private dayNames = [| "Sun"; "Mon"; "Tue"; "Wed"; "Thu"; "Fri"; "Sat" |]
    let private longDayNames = [| "Sunday"; "Monday"; "Tuesday"; "Wednesday"; "Thursday"; "Friday"; "Saturday" |]
    let private monthNames = [| "Jan"; "Feb"; "Mar"; "Apr"; "May"; "Jun"; "Jul"; "Aug"; "Sep"; "Oct"; "Nov"; "Dec" |]

    /// `n` ASCII digits at `at` in `text` as a number, or -1.
    let private digits (text: string) (at: int) (n: int) =
        if at < 0 || at + n > text.Length then -1
        else
            let mutable value = 0
            let mutable ok = true
            for i in at .. at + n - 1 do
                if Char.IsAsciiDigit text[i] then value <- value * 10 + int text[i] - int '0' else ok <- false
            if ok then value else -1

    let private literal (text: string) (at: int) (expected: string) =
        at >= 0 && at + expected.Length <= text.Length && String.CompareOrdinal(text, at, expected, 0, expected.Length) = 0

    /// The index of the name (case-sensitive, RFC 9110 §5.6.7 `%s"Jan"`) at `at`, or -1.
    let private nameAt (names: string array) (text: string) (at: int) = names |> Array.tryFindIndex (literal text at) |> Option.defaultValue -1

    /// `hour ":" minute ":" second` (RFC 9110 §5.6.7 time-of-day) at `at`, or None. A leap second (60) has no
    /// DateTimeOffset, so it does not parse.
    let private timeOfDay (text: string) (at: int) =
        let h, m, s = digits text at 2, digits text (at + 3) 2, digits text (at + 6) 2
        if literal text (at + 2) ":" && literal text (at + 5) ":" && h >= 0 && h < 24 && m >= 0 && m < 60 && s >= 0 && s < 60 then Some(h, m, s)
        else None

    /// The moment, if the fields name one and `day` (0 = Sunday) is its day of the week.
    let private moment (year: int) (month: int) (day: int) (h: int, m: int, s: int) (weekday: int) =
        if year < 1 || month < 1 || day < 1 || day > DateTime.DaysInMonth(year, month) then None
        else
            let d = DateTimeOffset(year, month, day, h, m, s, TimeSpan.Zero)
            if int d.DayOfWeek = weekday then Some d else None

    /// An HTTP-date (RFC 9110 §5.6.7), strictly: IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, and the obsolete
    /// forms a recipient MUST accept, rfc850-date `Sunday, 06-Nov-94 08:49:37 GMT` and asctime-date
    /// `Sun Nov  6 08:49:37 1994`. Names are case-sensitive, every space is exactly one SP (asctime pads a
    /// one-digit day with a second SP), and the day name must be the date's. Rejects anything else (doubled
    /// spaces, other zones, a wrong day name, 24:00 or a leap second): an invalid Expires means "already
    /// expired" (RFC 9111 §5.3), and an invalid If-Modified-Since is ignored (RFC 9110 §13.1.3). An
    /// rfc850-date's two-digit year is the one in the century that puts it no more than 50 years after
    /// `received` (RFC 9110 §5.6.7); `received` is when the message arrived.
    [<CompiledName("ParseDate")>]
    let parseDate (text: string, received: DateTimeOffset) : DateTimeOffset option =
        // RFC 9110 §5.5: the field value excludes leading and trailing whitespace (OWS).
        let t = text.Trim([| ' '; '\t' |])
        let imfFixdate () =
            let weekday = nameAt dayNames t 0
            let month = nameAt monthNames t 8
            if t.Length = 29 && weekday >= 0 && literal t 3 ", " && literal t 7 " " && month >= 0 && literal t 11 " "
               && literal t 16 " " && literal t 25 " GMT" then
                match digits t 5 2, digits t 12 4, timeOfDay t 17 with
                | day, year, Some time when day >= 0 && year >= 0 -> moment year (month + 1) day time weekday
                | _ -> None
            else None
        let rfc850 () =
            let weekday = nameAt longDayNames t 0
            if weekday < 0 then None
            else
                let at = longDayNames[weekday].Length
                let month = nameAt monthNames t (at + 5)
                if t.Length = at + 24 && literal t at ", " && literal t (at + 4) "-" && month >= 0 && literal t (at + 8) "-"
                   && literal t (at + 11) " " && literal t (at + 20) " GMT" then
                    match digits t (at + 2) 2, digits t (at + 9) 2, timeOfDay t (at + 12) with
                    | day, yy, Some time when day >= 0 && yy >= 0 ->
                        let sameCentury = received.Year - received.Year % 100 + yy
                        let year = if sameCentury > received.Year + 50 then sameCentury - 100 else sameCentury
                        moment year (month + 1) day time weekday
                    | _ -> None
                else None
        let asctime () =
            let weekday = nameAt dayNames t 0
            let month = nameAt monthNames t 4
            if t.Length = 24 && weekday >= 0 && literal t 3 " " && month >= 0 && literal t 7 " " && literal t 10 " "
               && literal t 19 " " then
                let day = if literal t 8 " " then digits t 9 1 else digits t 8 2
                match day, timeOfDay t 11, digits t 20 4 with
                | day, Some time, year when day >= 0 && year >= 0 -> moment year (month + 1) day time weekday
                | _ -> None
            else None
        imfFixdate () |> Option.orElseWith rfc850 |> Option.orElseWith asctime

    /// An HTTP-date as IMF-fixdate (RFC 9110 §5.6.7).
    let formatDate (d: DateTimeOffset) = d.ToUniversalTime().ToString("r", CultureInfo.InvariantCulture)

    /// RFC 9111 §1.2.2: a delta-seconds beyond 2^31 counts as 2147483648, the largest a cache must handle.
    let private maxDelta = TimeSpan.FromSeconds 2147483648.0

    /// delta-seconds (RFC 9111 §1.2.2, `1*DIGIT`), capped at 2147483648 s; None when the text is not one.
    let private deltaSeconds (text: string) : TimeSpan option =
        if text <> "" && text |> Seq.forall Char.IsAsciiDigit then
            let significant = text.TrimStart '0'
            // More than 10 significant digits is beyond 2^31 whatever they are: no Int64 overflow to handle.
            if significant.Length > 10 then Some maxDelta
            else
                let seconds = if significant = "" then 0L else Int64.Parse(significant, NumberStyles.None, CultureInfo.InvariantCulture)
                Some(if seconds >= 2147483648L then maxDelta else TimeSpan.FromSeconds(float seconds))
        else
            None

    /// The Age value (RFC 9111 §5.1): one delta-seconds on one line. Zero when absent. A list (`7200, 0`,
    /// or two Age lines) or any other invalid value counts as 2147483648 s, the §1.2.2 maximum: §5.1 gives no
    /// reading for it, and the safe one is that the response may be older than any lifetime. Ignoring it (zero)
    /// would serve a response the backend says is two hours old as fresh; as the maximum it is stale, never
    /// within a request's max-stale limit or a stale-if-error window, and is validated or fetched again.
    let private ageValue (headers: (string * string) array) : TimeSpan =
        match values "Age" headers with
        | [||] -> TimeSpan.Zero
        | [| one |] -> deltaSeconds (one.Trim([| ' '; '\t' |])) |> Option.defaultValue maxDelta
        | _ -> maxDelta

    // ---- Cache-Control ------------------------------------------------------------------------------

    let private noDirectives =
        { NoStore = false
          NoCache = false
          Private = false
          Public = false
          MustRevalidate = false
          ProxyRevalidate = false
          MaxAge = None
          SharedMaxAge = None
          MaxStale = None
          MinFresh = None
          OnlyIfCached = false
          StaleWhileRevalidate = None
          StaleIfError = None
          Malformed = false
          Conflicting = false }

    let private isToken (text: string) = Token.isToken text

    /// A directive's argument (RFC 9111 §5.2: token or quoted-string, and recipients accept both forms even
    /// where one is required), unquoted; None when it is neither.
    let private argument (text: string) : string option =
        if text.Length >= 2 && text[0] = '"' && text[text.Length - 1] = '"' then
            let inner = text.Substring(1, text.Length - 2)
            let b = Text.StringBuilder()
            let mutable escaped = false
            let mutable ok = true
            for c in inner do
                if escaped then
                    b.Append c |> ignore
                    escaped <- false
                elif c = '\\' then escaped <- true
                elif c = '"' then ok <- false
                else b.Append c |> ignore
            if ok && not escaped then Some(b.ToString()) else None
        elif isToken text then Some text
        else None

    /// One directive as (lower-case name, argument), or None when it does not parse (RFC 9111 §5.2
    /// `cache-directive = token [ "=" ( token / quoted-string ) ]`).
    let private directive (m: string) : (string * string option) option =
        match m.IndexOf '=' with
        | -1 -> if isToken m then Some(m.ToLowerInvariant(), None) else None
        | i ->
            let name = m.Substring(0, i).Trim()
            match argument (m.Substring(i + 1).Trim()) with
            | Some arg when isToken name -> Some(name.ToLowerInvariant(), Some arg)
            | _ -> None

    /// The Cache-Control directives of a message (RFC 9111 §5.2), names compared case-insensitively; for a
    /// request without Cache-Control, `Pragma: no-cache` counts as `no-cache` (RFC 9111 §5.4 keeps it for
    /// HTTP/1.0 clients). Malformed (the response is not stored): a member that is not a directive, or a
    /// max-age, s-maxage, min-fresh or max-stale whose argument is not delta-seconds. A delta-seconds beyond
    /// 2^31 is 2147483648 s (§1.2.2), not an error. A stale-while-revalidate or stale-if-error (RFC 5861) with
    /// an invalid argument is ignored: without it no stale response is served, the safe side. The qualified
    /// forms of no-cache and private (`no-cache="Set-Cookie"`) count as the unqualified ones (§5.2.2.4, §5.2.2.7
    /// allow a cache to treat them so).
    [<CompiledName("Directives")>]
    let directives (headers: (string * string) array) : CacheDirectives =
        match combined "Cache-Control" headers with
        | None ->
            let pragma = combined "Pragma" headers |> Option.map listMembers |> Option.defaultValue []
            { noDirectives with NoCache = pragma |> List.exists (fun p -> String.Equals(p, "no-cache", StringComparison.OrdinalIgnoreCase)) }
        | Some text ->
            let parsed = listMembers text |> List.map directive
            if parsed |> List.exists Option.isNone then
                { noDirectives with Malformed = true }
            else
                let all = parsed |> List.choose id
                let present name = all |> List.exists (fun (n, _) -> n = name)
                let argumentsOf name = all |> List.filter (fun (n, _) -> n = name) |> List.map snd
                // A required delta-seconds: Ok None when absent, Error when present without a valid one.
                let delta name =
                    match argumentsOf name with
                    | [] -> Ok None
                    | arg :: _ ->
                        match arg |> Option.bind deltaSeconds with
                        | Some d -> Ok(Some d)
                        | None -> Error name
                let maxStale =
                    match argumentsOf "max-stale" with
                    | [] -> Ok None
                    | None :: _ -> Ok(Some None)
                    | Some arg :: _ ->
                        match deltaSeconds arg with
                        | Some d -> Ok(Some(Some d))
                        | None -> Error "max-stale"
                let optionalDelta name = match delta name with Ok d -> d | Error _ -> None
                let twice name = (argumentsOf name).Length > 1
                match delta "max-age", delta "s-maxage", delta "min-fresh", maxStale with
                | Ok maxAge, Ok sMaxAge, Ok minFresh, Ok maxStale ->
                    { NoStore = present "no-store"
                      NoCache = present "no-cache"
                      Private = present "private"
                      Public = present "public"
                      MustRevalidate = present "must-revalidate"
                      ProxyRevalidate = present "proxy-revalidate"
                      MaxAge = maxAge
                      SharedMaxAge = sMaxAge
                      MaxStale = maxStale
                      MinFresh = minFresh
                      OnlyIfCached = present "only-if-cached"
                      StaleWhileRevalidate = optionalDelta "stale-while-revalidate"
                      StaleIfError = optionalDelta "stale-if-error"
                      Malformed = false
                      Conflicting = twice "max-age" || twice "s-maxage" }
                | _ -> { noDirectives with Malformed = true }

    // ---- Requests -----------------------------------------------------------------------------------

    /// RFC 9110 §9.2.1: the methods that are safe; any other may change the target resource.
    let private safeMethods = set [ "GET"; "HEAD"; "OPTIONS"; "TRACE" ]

    /// What the cache does with a request: GET and HEAD are looked up (method names are case-sensitive, RFC
    /// 9110 §9.1); a Range request is forwarded untouched (lb does not assemble partial content, §3.3); unsafe
    /// methods invalidate the target after a non-error response (§4.4).
    [<CompiledName("Classify")>]
    let classify (request: CacheRequest) : CacheRequestKind =
        match request.Method with
        | "GET"
        | "HEAD" when has "Range" request.Headers -> CacheRequestKind.Uncached "Range request"
        | "GET"
        | "HEAD" -> CacheRequestKind.Cacheable
        | m when safeMethods.Contains m -> CacheRequestKind.Uncached $"{m} is not cached"
        | _ -> CacheRequestKind.Unsafe

    // ---- Keys ---------------------------------------------------------------------------------------

    /// Length-prefixed parts: no choice of values can make two different part lists read the same.
    let private encode (parts: string seq) =
        let b = Text.StringBuilder()
        for p in parts do
            b.Append(p.Length).Append(':').Append(p) |> ignore
        b.ToString()

    /// The primary cache key (RFC 9111 §2): the app, the method and the target URI (scheme, host, path and
    /// query). The app comes first, so one app's entries can never answer for another's. Scheme and host are
    /// compared case-insensitively (RFC 3986 §6.2.2.1); the target as received, byte for byte.
    [<CompiledName("PrimaryKey")>]
    let primaryKey (request: CacheRequest) : string =
        encode [ request.App.Name; request.Method; request.Scheme.ToLowerInvariant(); request.Host.ToLowerInvariant(); request.Target ]

    /// The field names a response's Vary nominates (RFC 9111 §4.1), lower-case, sorted, once each; `*` included.
    [<CompiledName("VaryNames")>]
    let varyNames (headers: (string * string) array) : string array =
        values "Vary" headers
        |> Array.collect (fun v -> listMembers v |> Array.ofList)
        |> Array.map (fun n -> n.ToLowerInvariant())
        |> Array.distinct
        |> Array.sort

    /// The value of a Vary-selected field in a request, normalised as §4.1 allows (lines combined, outer
    /// whitespace dropped); None when absent, which only matches absent. `Cookie` is the Cookie the backend
    /// receives: without lb's persistence cookie (`Persistence.backendCookieHeaders`), which says which server
    /// a client is pinned to, not what the application answers.
    let private selected (request: CacheRequest) (name: string) : string option =
        match values name request.Headers with
        | [||] -> None
        | vs when name = "cookie" ->
            match Persistence.backendCookieHeaders (request.App, vs) with
            | [||] -> None
            | cookies -> Some(String.Join("; ", cookies |> Array.map (fun c -> c.Trim())))
        | vs -> Some(String.Join(", ", vs |> Array.map (fun v -> v.Trim())))

    /// The key of one variant: the primary key and the request's value of each name in `varyNames` (from
    /// `varyNames`). With no names it is the primary key itself.
    [<CompiledName("VariantKey")>]
    let variantKey (request: CacheRequest, names: string array) : string =
        if names.Length = 0 then
            primaryKey request
        else
            let parts =
                names
                |> Seq.collect (fun n ->
                    match selected request n with
                    | Some v -> [ n; "=" + v ]
                    | None -> [ n; "" ])
            primaryKey request + "|" + encode parts

    /// The keys to drop after an unsafe request to the target got a non-error response (RFC 9111 §4.4: 2xx
    /// or 3xx): the GET and HEAD entries of the same target. Empty for any other request or status.
    [<CompiledName("InvalidatedKeys")>]
    let invalidatedKeys (request: CacheRequest, status: int) : string array =
        match classify request with
        | CacheRequestKind.Unsafe when status >= 200 && status < 400 ->
            [| primaryKey { request with Method = "GET" }; primaryKey { request with Method = "HEAD" } |]
        | _ -> [||]

    // ---- Storing ------------------------------------------------------------------------------------

    /// RFC 9110 §15.1: statuses cacheable by default (heuristically, were there heuristics). 206 is among
    /// them, but lb does not store it: it neither stores nor combines partial content (RFC 9111 §3.3, §3.4),
    /// and answers a Range request by forwarding it (`classify`).
    let private heuristicallyCacheable = set [ 200; 203; 204; 300; 301; 308; 404; 405; 410; 414; 501 ]

    /// The final statuses lb understands and stores when the response has explicit freshness (RFC 9111 §3:
    /// any final status may be stored then): the above, the redirects of RFC 9110 §15.4, 403, 406, 409 and
    /// the server errors 500, 502, 503 and 504 (§15.6). Not the statuses that describe this one request in
    /// what the cache key does not hold, which would answer other requests wrongly: 304 and 412 (its
    /// conditionals), 400, 411, 413, 415, 417 and 422 (its head or content), 401 and 407 (its credentials;
    /// Proxy-Authenticate is not even stored, §3.1), 408, 421, 426 and 505 (its connection or version), 416
    /// (its Range); nor 1xx (not final), 206 (above), 305, 306, or a status RFC 9110 does not define.
    let private understood = heuristicallyCacheable + set [ 302; 303; 307; 403; 406; 409; 500; 502; 503; 504 ]

    let private hasExplicitFreshness (cc: CacheDirectives) (headers: (string * string) array) =
        cc.MaxAge.IsSome || cc.SharedMaxAge.IsSome || has "Expires" headers

    let private hasValidator (headers: (string * string) array) = has "ETag" headers || has "Last-Modified" headers

    /// Whether a shared cache may store this response to this request (RFC 9111 §3). Rejects, with the reason:
    /// a method other than GET/HEAD; a status lb does not understand (`understood`); request or response
    /// `no-store` (§5.2.1.5, §5.2.2.5); `private` (§5.2.2.7, also its qualified form); an unreadable Cache-Control; `Set-Cookie`
    /// (lb's rule, stricter than §3: a shared cache must not hand one client's cookie to another); `Vary: *`
    /// (§4.1: it never matches); a request with Authorization unless the response says `public`, `s-maxage` or
    /// `must-revalidate` (§3.5); and a response without explicit freshness (max-age, s-maxage, Expires) unless
    /// it has a validator and a status cacheable by default (RFC 9110 §15.1) or `public` (lb has no heuristic
    /// freshness, §4.2.2, so such a response is stored stale and validated on each use). So a 404, 500 or 503
    /// with max-age is stored; a 503 with only an ETag is not.
    [<CompiledName("Storability")>]
    let storability (request: CacheRequest, response: CacheResponse) : Storability =
        let requestCc = directives request.Headers
        let cc = directives response.Headers
        if request.Method <> "GET" && request.Method <> "HEAD" then Storability.DoNotStore $"{request.Method} is not stored"
        elif not (understood.Contains response.Status) then Storability.DoNotStore $"status {response.Status} is not stored"
        elif requestCc.NoStore then Storability.DoNotStore "the request says no-store"
        elif cc.Malformed then Storability.DoNotStore "unreadable Cache-Control"
        elif cc.NoStore then Storability.DoNotStore "no-store"
        elif cc.Private then Storability.DoNotStore "private"
        elif has "Set-Cookie" response.Headers then Storability.DoNotStore "Set-Cookie"
        elif varyNames response.Headers |> Array.contains "*" then Storability.DoNotStore "Vary: *"
        elif has "Authorization" request.Headers && not (cc.Public || cc.SharedMaxAge.IsSome || cc.MustRevalidate) then
            Storability.DoNotStore "Authorization without public, s-maxage or must-revalidate"
        elif hasExplicitFreshness cc response.Headers then Storability.Store
        elif hasValidator response.Headers && (heuristicallyCacheable.Contains response.Status || cc.Public) then Storability.Store
        elif hasValidator response.Headers then Storability.DoNotStore $"status {response.Status} is stored only with explicit freshness or public"
        else Storability.DoNotStore "no explicit freshness and no validator"

    /// RFC 9111 §3.3: only a complete response is stored. With Content-Length, the body received must have
    /// exactly that length (a response to HEAD has no body); without it, the end of the body was its end.
    [<CompiledName("IsComplete")>]
    let isComplete (method: string, response: CacheResponse, bodyLength: int64) : bool =
        method = "HEAD"
        || (match combined "Content-Length" response.Headers with
            | Some text ->
                match Int64.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture) with
                | true, n -> n = bodyLength
                | _ -> false
            | None -> true)

    // ---- Freshness and age --------------------------------------------------------------------------

    /// The Date of a stored response, or when it arrived when its Date is absent or invalid (RFC 9110 §6.6.1).
    let private dateOf (stored: StoredResponse) =
        combined "Date" stored.Response.Headers
        |> Option.bind (fun d -> parseDate (d, stored.ResponseTime))
        |> Option.defaultValue stored.ResponseTime

    /// The freshness lifetime (RFC 9111 §4.2.1), for a shared cache: `s-maxage`, else `max-age`, else
    /// `Expires` minus `Date` (the response time when Date is absent), else zero (no heuristics). A repeated
    /// max-age or s-maxage, several Expires lines or an invalid Expires give zero: stale.
    [<CompiledName("FreshnessLifetime")>]
    let freshnessLifetime (stored: StoredResponse) : TimeSpan =
        let headers = stored.Response.Headers
        let cc = directives headers
        if cc.Conflicting then
            TimeSpan.Zero
        else
            match cc.SharedMaxAge, cc.MaxAge with
            | Some s, _ -> s
            | None, Some m -> m
            | None, None ->
                match values "Expires" headers with
                | [| expires |] ->
                    match parseDate (expires, stored.ResponseTime) with
                    | Some e ->
                        let date = dateOf stored
                        max TimeSpan.Zero (e - date)
                    | None -> TimeSpan.Zero
                | _ -> TimeSpan.Zero

    /// RFC 9111 §4.2.3 `current_age`, from its inputs: the Date value, the Age value, when the request left and
    /// its response arrived, and now. Never negative, and never decreasing as `now` grows (resident time is
    /// counted from `responseTime`, zero before it).
    [<CompiledName("Age")>]
    let age (date: DateTimeOffset, ageValue: TimeSpan, requestTime: DateTimeOffset, responseTime: DateTimeOffset, now: DateTimeOffset) : TimeSpan =
        let apparentAge = max TimeSpan.Zero (responseTime - date)
        let responseDelay = max TimeSpan.Zero (responseTime - requestTime)
        let correctedAgeValue = max TimeSpan.Zero ageValue + responseDelay
        let correctedInitialAge = max apparentAge correctedAgeValue
        let residentTime = max TimeSpan.Zero (now - responseTime)
        correctedInitialAge + residentTime

    /// The current age of a stored response (`age` with its Date, Age, request and response times).
    [<CompiledName("CurrentAge")>]
    let currentAge (stored: StoredResponse, now: DateTimeOffset) : TimeSpan =
        let headers = stored.Response.Headers
        let date = dateOf stored
        age (date, ageValue headers, stored.RequestTime, stored.ResponseTime, now)

    // ---- Using a stored response --------------------------------------------------------------------

    /// The conditional headers that validate a stored response (RFC 9111 §4.3.1): its ETag in If-None-Match
    /// and its Last-Modified in If-Modified-Since. Empty when it has neither.
    [<CompiledName("Conditionals")>]
    let conditionals (stored: StoredResponse) : (string * string) array =
        [| yield! combined "ETag" stored.Response.Headers |> Option.map (fun e -> "If-None-Match", e) |> Option.toArray
           yield! combined "Last-Modified" stored.Response.Headers |> Option.map (fun d -> "If-Modified-Since", d) |> Option.toArray |]

    /// Entity tags of an If-None-Match value, `W/` kept; `*` stands alone (RFC 9110 §13.1.2).
    let private entityTags (text: string) : string list = listMembers text

    /// Weak comparison (RFC 9110 §8.8.3.2): equal opaque tags, whether or not either is weak.
    let private weakEqual (a: string) (b: string) =
        let opaque (t: string) = if t.StartsWith "W/" then t.Substring 2 else t
        String.Equals(opaque (a.Trim()), opaque (b.Trim()), StringComparison.Ordinal)

    /// Whether the client's own conditional request is satisfied by the stored response, so the answer is 304
    /// (RFC 9111 §4.3.2, RFC 9110 §13.2.2): If-None-Match by weak comparison with the stored ETag, else (only
    /// without If-None-Match) If-Modified-Since against the stored Last-Modified, else Date, else the response
    /// time. Only a 2xx stored response to GET/HEAD is answered with 304.
    [<CompiledName("NotModified")>]
    let notModified (request: CacheRequest, stored: StoredResponse) : bool =
        let headers = stored.Response.Headers
        let status = stored.Response.Status
        if status < 200 || status > 299 || (request.Method <> "GET" && request.Method <> "HEAD") then
            false
        else
            match combined "If-None-Match" request.Headers with
            | Some inm ->
                match combined "ETag" headers with
                | Some etag -> entityTags inm |> List.exists (fun t -> t = "*" || weakEqual t etag)
                | None -> entityTags inm |> List.contains "*"
            | None ->
                let read text = parseDate (text, stored.ResponseTime)
                match combined "If-Modified-Since" request.Headers |> Option.bind read with
                | Some since ->
                    let modified =
                        combined "Last-Modified" headers
                        |> Option.orElse (combined "Date" headers)
                        |> Option.bind read
                        |> Option.defaultValue stored.ResponseTime
                    modified <= since
                | None -> false

    /// Whether the stored response forbids serving it stale at all (RFC 9111 §4.2.4): must-revalidate,
    /// proxy-revalidate or s-maxage (§5.2.2.2, §5.2.2.8, §5.2.2.10; lb is a shared cache), or no-cache
    /// (§5.2.2.4). RFC 5861 §3, §4 do not override them.
    let private staleForbidden (cc: CacheDirectives) = cc.MustRevalidate || cc.ProxyRevalidate || cc.SharedMaxAge.IsSome || cc.NoCache

    /// How far past its freshness lifetime the stored response is at `now` (negative while fresh), and its age.
    let private staleness (stored: StoredResponse) (now: DateTimeOffset) =
        let age = currentAge (stored, now)
        age - freshnessLifetime stored, age

    /// The decision for a cacheable request given the stored response for its key, if any, at `now`:
    /// - nothing stored: Miss, or GatewayTimeout with `only-if-cached`;
    /// - usable without validation: Hit. It is fresh (age + the request's `min-fresh` below the lifetime,
    ///   age within the request's `max-age`), or stale within the request's `max-stale` when the response
    ///   allows serving stale (no `must-revalidate`, `proxy-revalidate` or `s-maxage`, §5.2.2.2, §5.2.2.8,
    ///   §5.2.2.10); and neither side says `no-cache` (§5.2.1.4, §5.2.2.4);
    /// - stale, but no more than the response's `stale-while-revalidate` past its lifetime (RFC 5861 §3), the
    ///   response allowing stale, and the request asking for neither `no-cache`, a `max-age` at or below the
    ///   age nor `min-fresh`: HitWhileRevalidating, answered at once while the shell revalidates in the background;
    /// - otherwise Validate with its validators (§4.3.1), or, without validators, Miss (GatewayTimeout
    ///   with `only-if-cached`). Either way the backend may fail: `staleOnError` then says whether the stored
    ///   response answers instead.
    [<CompiledName("Decide")>]
    let decide (request: CacheRequest, stored: StoredResponse option, now: DateTimeOffset) : CacheUse =
        let requestCc = directives request.Headers
        match stored with
        | None -> if requestCc.OnlyIfCached then CacheUse.GatewayTimeout else CacheUse.Miss "not stored"
        | Some stored ->
            let cc = directives stored.Response.Headers
            let stale, age = staleness stored now
            let minFresh = defaultArg requestCc.MinFresh TimeSpan.Zero
            let withinRequestMaxAge = requestCc.MaxAge |> Option.forall (fun m -> age <= m)
            let fresh = stale + minFresh < TimeSpan.Zero
            let staleAllowed =
                not (cc.MustRevalidate || cc.ProxyRevalidate || cc.SharedMaxAge.IsSome)
                && (match requestCc.MaxStale with
                    | Some None -> true
                    | Some(Some limit) -> stale <= limit
                    | None -> false)
            let whileRevalidating =
                // A request max-age at or below the age (max-age=0 above all, the background revalidation's
                // own) asks for a newer response: it validates.
                not (staleForbidden cc) && not requestCc.NoCache && requestCc.MinFresh.IsNone
                && requestCc.MaxAge |> Option.forall (fun m -> age < m)
                && cc.StaleWhileRevalidate |> Option.exists (fun window -> stale <= window)
            if not cc.NoCache && not requestCc.NoCache && withinRequestMaxAge && (fresh || staleAllowed) then
                CacheUse.Hit(age, notModified (request, stored))
            elif whileRevalidating then
                CacheUse.HitWhileRevalidating(age, notModified (request, stored))
            else
                match conditionals stored with
                | [||] -> if requestCc.OnlyIfCached then CacheUse.GatewayTimeout else CacheUse.Miss "stale, and no validator"
                | conditions -> if requestCc.OnlyIfCached then CacheUse.GatewayTimeout else CacheUse.Validate conditions

    /// The client's conditionals, cache directives and body framing: a background revalidation carries none.
    let private notRepeated =
        set [ "if-none-match"; "if-modified-since"; "if-match"; "if-unmodified-since"; "if-range"; "cache-control"; "pragma"
              "content-length"; "transfer-encoding" ]

    /// The header fields of the background request that revalidates an entry answered under
    /// stale-while-revalidate (RFC 5861 §3): the client's, without its conditionals (the cache sends its own
    /// validators, §4.3.1), its cache directives or body framing, and with `Cache-Control: max-age=0`, so that
    /// request's own `decide` is Validate (or Miss without validators), never a stale answer.
    [<CompiledName("RevalidationHeaders")>]
    let revalidationHeaders (headers: (string * string) array) : (string * string) array =
        Array.append (headers |> Array.filter (fun (n, _) -> not (notRepeated.Contains(n.ToLowerInvariant())))) [| "Cache-Control", "max-age=0" |]

    /// RFC 5861 §4: the failures after which a stale response may answer: 500, 502, 503 and 504 from the
    /// backend, and 0 for no response at all (no connection, a timeout).
    let private isError (status: int) = status = 0 || status = 500 || status = 502 || status = 503 || status = 504

    /// Whether the stored response answers the request instead of the backend's failure `status` (500, 502,
    /// 503, 504, or 0 when no response came; any other status gives false) at `now` (RFC 5861 §4
    /// stale-if-error): it is no more than the request's `stale-if-error` past its lifetime, or, when the
    /// request has none, the response's; and neither the response (`staleForbidden`) nor the request
    /// (`no-cache`) forbids a stale answer. A fresh stored response (validated because the request said
    /// `max-age=0`) answers within any window.
    [<CompiledName("StaleOnError")>]
    let staleOnError (request: CacheRequest, stored: StoredResponse, status: int, now: DateTimeOffset) : bool =
        let requestCc = directives request.Headers
        let cc = directives stored.Response.Headers
        let stale, _ = staleness stored now
        isError status && not (staleForbidden cc) && not requestCc.NoCache
        && (requestCc.StaleIfError |> Option.orElse cc.StaleIfError |> Option.exists (fun window -> stale <= window))

    // ---- Answers and updates ------------------------------------------------------------------------

    /// Fields a cache neither stores nor sends on (RFC 9111 §3.1 with RFC 9110 §7.6.1 hop-by-hop fields).
    let private notStored =
        set [ "connection"; "keep-alive"; "proxy-connection"; "te"; "transfer-encoding"; "upgrade"; "trailer"
              "proxy-authenticate"; "proxy-authentication-info"; "proxy-authorization" ]

    /// The header fields of a response as stored: without hop-by-hop fields (§3.1).
    [<CompiledName("StoredHeaders")>]
    let storedHeaders (headers: (string * string) array) : (string * string) array =
        headers |> Array.filter (fun (n, _) -> not (notStored.Contains(n.ToLowerInvariant())))

    /// The header fields of an answer from the cache: the stored ones with `Age` set to the current age in
    /// whole seconds (§5.1).
    [<CompiledName("ServedHeaders")>]
    let servedHeaders (stored: StoredResponse, age: TimeSpan) : (string * string) array =
        let seconds = min (int64 age.TotalSeconds) 2147483648L
        Array.append
            (stored.Response.Headers |> Array.filter (fun h -> not (named "Age" h)))
            [| "Age", seconds.ToString CultureInfo.InvariantCulture |]

    /// The header fields of a 304 answered from the cache (RFC 9110 §15.4.5): those of the stored response
    /// among Cache-Control, Content-Location, Date, ETag, Expires and Vary, and Age.
    [<CompiledName("NotModifiedHeaders")>]
    let notModifiedHeaders (stored: StoredResponse, age: TimeSpan) : (string * string) array =
        let kept = set [ "cache-control"; "content-location"; "date"; "etag"; "expires"; "vary"; "age" ]
        servedHeaders (stored, age) |> Array.filter (fun (n, _) -> kept.Contains(n.ToLowerInvariant()))

    /// The stored response refreshed by a 304 to its validation (RFC 9111 §4.3.4, §3.2): each field the 304
    /// carries replaces the stored lines of that name, except Content-Length and the fields not stored; an Age
    /// not repeated by the 304 is dropped (it described the old message, §5.1). The request and response times
    /// become those of the validation.
    [<CompiledName("Refresh")>]
    let refresh (stored: StoredResponse, notModified: (string * string) array, requestTime: DateTimeOffset, responseTime: DateTimeOffset) : StoredResponse =
        let updates =
            storedHeaders notModified |> Array.filter (fun h -> not (named "Content-Length" h))
        let replaced = updates |> Array.map (fun (n, _) -> n.ToLowerInvariant()) |> Set.ofArray |> Set.add "age"
        let kept = stored.Response.Headers |> Array.filter (fun (n, _) -> not (replaced.Contains(n.ToLowerInvariant())))
        { Response = { stored.Response with Headers = Array.append kept updates }
          RequestTime = requestTime
          ResponseTime = responseTime }
