namespace Lb.Rules

open System
open System.Globalization
open System.Net.Http.Headers

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

    /// RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient must accept.
    let private dateFormats =
        [| "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'"
           "dddd, dd'-'MMM'-'yy HH':'mm':'ss 'GMT'"
           "ddd MMM d HH':'mm':'ss yyyy" |]

    /// An HTTP-date, or None when the text is not one (an invalid Expires means "already expired", §5.3).
    let parseDate (text: string) : DateTimeOffset option =
        let styles = DateTimeStyles.AssumeUniversal ||| DateTimeStyles.AdjustToUniversal ||| DateTimeStyles.AllowWhiteSpaces
        match DateTimeOffset.TryParseExact(text.Trim(), dateFormats, CultureInfo.InvariantCulture, styles) with
        | true, d -> Some d
        | _ -> None

    /// An HTTP-date as IMF-fixdate (RFC 9110 §5.6.7).
    let formatDate (d: DateTimeOffset) = d.ToUniversalTime().ToString("r", CultureInfo.InvariantCulture)

    /// RFC 9111 §1.2.2: delta-seconds beyond 2^31 count as 2147483648.
    let private maxDelta = TimeSpan.FromSeconds 2147483648.0

    /// The Age header (§5.1): delta-seconds; an invalid value is ignored (zero).
    let private ageValue (headers: (string * string) array) : TimeSpan =
        match values "Age" headers with
        | [||] -> TimeSpan.Zero
        | vs ->
            let text = vs[0].Trim()
            if text <> "" && text |> Seq.forall Char.IsAsciiDigit then
                match Int64.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture) with
                | true, s when s < 2147483648L -> TimeSpan.FromSeconds(float s)
                | _ -> maxDelta
            else
                TimeSpan.Zero

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
          Malformed = false
          Conflicting = false }

    let private directiveName (m: string) =
        match m.IndexOf '=' with
        | -1 -> m.Trim().ToLowerInvariant()
        | i -> m.Substring(0, i).Trim().ToLowerInvariant()

    /// The Cache-Control directives of a message, parsed by the framework (System.Net.Http's
    /// CacheControlHeaderValue); for a request without Cache-Control, `Pragma: no-cache` counts as `no-cache`
    /// (RFC 9111 §5.4 keeps it for HTTP/1.0 clients).
    [<CompiledName("Directives")>]
    let directives (headers: (string * string) array) : CacheDirectives =
        match combined "Cache-Control" headers with
        | None ->
            let pragma = combined "Pragma" headers |> Option.map listMembers |> Option.defaultValue []
            { noDirectives with NoCache = pragma |> List.exists (fun p -> String.Equals(p, "no-cache", StringComparison.OrdinalIgnoreCase)) }
        | Some text ->
            match CacheControlHeaderValue.TryParse text with
            | true, NonNull cc ->
                let names = listMembers text |> List.map directiveName
                let twice name = (names |> List.filter ((=) name) |> List.length) > 1
                { NoStore = cc.NoStore
                  NoCache = cc.NoCache
                  Private = cc.Private
                  Public = cc.Public
                  MustRevalidate = cc.MustRevalidate
                  ProxyRevalidate = cc.ProxyRevalidate
                  MaxAge = Option.ofNullable cc.MaxAge
                  SharedMaxAge = Option.ofNullable cc.SharedMaxAge
                  MaxStale = (if cc.MaxStale then Some(Option.ofNullable cc.MaxStaleLimit) else None)
                  MinFresh = Option.ofNullable cc.MinFresh
                  OnlyIfCached = cc.OnlyIfCached
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

    /// RFC 9110 §15.1: statuses cacheable by default (heuristically, were there heuristics).
    let private heuristicallyCacheable = set [ 200; 203; 204; 300; 301; 308; 404; 405; 410; 414; 501 ]

    /// The final statuses lb stores: the above and the redirects whose meaning it knows (RFC 9110 §15.4),
    /// which need explicit freshness. Not 206 (no partial content), not 304, not 5xx but 501.
    let private understood = heuristicallyCacheable + set [ 302; 303; 307 ]

    let private hasExplicitFreshness (cc: CacheDirectives) (headers: (string * string) array) =
        cc.MaxAge.IsSome || cc.SharedMaxAge.IsSome || has "Expires" headers

    let private hasValidator (headers: (string * string) array) = has "ETag" headers || has "Last-Modified" headers

    /// Whether a shared cache may store this response to this request (RFC 9111 §3). Rejects, with the reason:
    /// a method other than GET/HEAD; a status lb does not store; request or response `no-store` (§5.2.1.5,
    /// §5.2.2.5); `private` (§5.2.2.7, also its qualified form); an unreadable Cache-Control; `Set-Cookie`
    /// (lb's rule, stricter than §3: a shared cache must not hand one client's cookie to another); `Vary: *`
    /// (§4.1: it never matches); a request with Authorization unless the response says `public`, `s-maxage` or
    /// `must-revalidate` (§3.5); and a response with neither explicit freshness (max-age, s-maxage, Expires) nor
    /// a validator on a status cacheable by default or marked `public` (lb has no heuristic freshness, §4.2.2, so
    /// such a response is stored stale and validated on each use).
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
                    match parseDate expires with
                    | Some e ->
                        let date = combined "Date" headers |> Option.bind parseDate |> Option.defaultValue stored.ResponseTime
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
        let date = combined "Date" headers |> Option.bind parseDate |> Option.defaultValue stored.ResponseTime
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
                match combined "If-Modified-Since" request.Headers |> Option.bind parseDate with
                | Some since ->
                    let modified =
                        combined "Last-Modified" headers
                        |> Option.orElse (combined "Date" headers)
                        |> Option.bind parseDate
                        |> Option.defaultValue stored.ResponseTime
                    modified <= since
                | None -> false

    /// The decision for a cacheable request given the stored response for its key, if any, at `now`:
    /// - nothing stored: Miss, or GatewayTimeout with `only-if-cached`;
    /// - usable without validation: Hit. It is fresh (age + the request's `min-fresh` below the lifetime,
    ///   age within the request's `max-age`), or stale within the request's `max-stale` when the response
    ///   allows serving stale (no `must-revalidate`, `proxy-revalidate` or `s-maxage`, §5.2.2.2, §5.2.2.8,
    ///   §5.2.2.10); and neither side says `no-cache` (§5.2.1.4, §5.2.2.4);
    /// - otherwise Validate with its validators (§4.3.1), or, without validators, Miss (GatewayTimeout
    ///   with `only-if-cached`).
    [<CompiledName("Decide")>]
    let decide (request: CacheRequest, stored: StoredResponse option, now: DateTimeOffset) : CacheUse =
        let requestCc = directives request.Headers
        match stored with
        | None -> if requestCc.OnlyIfCached then CacheUse.GatewayTimeout else CacheUse.Miss "not stored"
        | Some stored ->
            let cc = directives stored.Response.Headers
            let age = currentAge (stored, now)
            let lifetime = freshnessLifetime stored
            let minFresh = defaultArg requestCc.MinFresh TimeSpan.Zero
            let withinRequestMaxAge = requestCc.MaxAge |> Option.forall (fun m -> age <= m)
            let fresh = age + minFresh < lifetime
            let staleAllowed =
                not (cc.MustRevalidate || cc.ProxyRevalidate || cc.SharedMaxAge.IsSome)
                && (match requestCc.MaxStale with
                    | Some None -> true
                    | Some(Some limit) -> age - lifetime <= limit
                    | None -> false)
            if not cc.NoCache && not requestCc.NoCache && withinRequestMaxAge && (fresh || staleAllowed) then
                CacheUse.Hit(age, notModified (request, stored))
            else
                match conditionals stored with
                | [||] -> if requestCc.OnlyIfCached then CacheUse.GatewayTimeout else CacheUse.Miss "stale, and no validator"
                | conditions -> if requestCc.OnlyIfCached then CacheUse.GatewayTimeout else CacheUse.Validate conditions

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
