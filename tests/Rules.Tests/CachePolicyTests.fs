module Lb.Rules.Tests.CachePolicyTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules
open Lb.Rules.Tests.Generators

let private forAll (g: Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

let private isStore s = s = Storability.Store

let private withHeader (name, value) (response: CacheResponse) =
    { response with Headers = Array.append response.Headers [| name, value |] }

let private stored (response: CacheResponse) (at: DateTimeOffset) =
    { Response = response; RequestTime = at; ResponseTime = at }

let private at = DateTimeOffset(2025, 7, 1, 12, 0, 0, TimeSpan.Zero)

let private get (target: string) (headers: (string * string) array) : CacheRequest =
    { App = cacheApp "app1"; Method = "GET"; Scheme = "https"; Host = "site.example"; Target = target; Headers = headers }

let private ok (headers: (string * string) array) : CacheResponse = { Status = 200; Headers = headers }

// ---- What is never stored ---------------------------------------------------------------------------

/// One thing that forbids storing, added to an otherwise arbitrary exchange.
type private Forbidden =
    | SetCookie
    | Private of string
    | NoStore of inRequest: bool
    | VaryStar of string
    | Method of string

let private forbidden: Gen<Forbidden> =
    Gen.oneof
        [ Gen.elements [ "a=b"; "SRVID=app1_1; Path=/app1/"; "" ] |> Gen.map (fun _ -> SetCookie)
          Gen.elements [ "private"; "private=\"Set-Cookie\""; "PRIVATE" ] |> Gen.map Private
          Gen.elements [ true; false ] |> Gen.map NoStore
          Gen.elements [ "*"; "Accept-Encoding, *"; " * " ] |> Gen.map VaryStar
          Gen.elements [ "POST"; "PUT"; "DELETE"; "PATCH"; "OPTIONS"; "TRACE"; "CONNECT"; "get"; "head" ] |> Gen.map Method ]

let private exchangeWith (f: Forbidden) (request: CacheRequest) (response: CacheResponse) =
    match f with
    | SetCookie -> request, response |> withHeader ("Set-Cookie", "a=b; Path=/app1/")
    | Private p -> request, response |> withHeader ("Cache-Control", p)
    | NoStore true -> { request with Headers = Array.append request.Headers [| "Cache-Control", "no-store" |] }, response
    | NoStore false -> request, response |> withHeader ("Cache-Control", "no-store")
    | VaryStar v -> request, response |> withHeader ("Vary", v)
    | Method m -> { request with Method = m }, response

[<Property(MaxTest = 1000)>]
let ``a response with Set-Cookie, private, no-store or Vary * is never stored, nor any response to a method but GET or HEAD`` () =
    forAll (Gen.zip3 forbidden cacheRequest cacheResponse) (fun (f, request, response) ->
        let request, response = exchangeWith f request response
        not (isStore (CachePolicy.storability (request, response))))

[<Property(MaxTest = 500)>]
let ``a response to a request with Authorization is stored only with public, s-maxage or must-revalidate`` () =
    forAll (Gen.zip cacheRequest cacheResponse) (fun (request, response) ->
        let request = { request with Headers = Array.append request.Headers [| "Authorization", "Bearer t" |] }
        let cc = CachePolicy.directives response.Headers
        not (isStore (CachePolicy.storability (request, response))) || cc.Public || cc.SharedMaxAge.IsSome || cc.MustRevalidate)

[<Property(MaxTest = 500)>]
let ``a stored response has explicit freshness, or a validator with a heuristically cacheable status or public; never 206 or 304`` () =
    forAll (Gen.zip cacheRequest cacheResponse) (fun (request, response) ->
        let has name = response.Headers |> Array.exists (fun (n, _) -> n = name)
        let cc = CachePolicy.directives response.Headers
        let explicitFreshness = cc.MaxAge.IsSome || cc.SharedMaxAge.IsSome || has "Expires"
        let heuristic = List.contains response.Status [ 200; 203; 204; 300; 301; 308; 404; 405; 410; 414; 501 ]
        not (isStore (CachePolicy.storability (request, response)))
        || ((explicitFreshness || ((has "ETag" || has "Last-Modified") && (heuristic || cc.Public)))
            && not (List.contains response.Status [ 206; 304 ])))

/// RFC 9111 §3: any final status the cache understands may be stored with explicit freshness.
[<Property(MaxTest = 500)>]
let ``a 404, 410, 500, 502, 503 or 504 with max-age, s-maxage or Expires is stored; without them and without a validator it is not`` () =
    let scenario =
        gen {
            let! status = Gen.elements [ 404; 410; 500; 502; 503; 504; 403; 302 ]
            let! freshness = Gen.elements [ "Cache-Control", "max-age=30"; "Cache-Control", "public, s-maxage=30"; "Expires", CachePolicy.formatDate (at.AddMinutes 1.0) ]
            let! request = cacheRequest
            return status, freshness, { request with Headers = request.Headers |> Array.filter (fun (n, _) -> n <> "Authorization" && n <> "Cache-Control") }
        }
    forAll scenario (fun (status, freshness, request) ->
        let response headers = { Status = status; Headers = Array.append [| "Date", CachePolicy.formatDate at |] headers }
        isStore (CachePolicy.storability (request, response [| freshness |]))
        && not (isStore (CachePolicy.storability (request, response [||]))))

[<Fact>]
let ``statuses that describe one request, 206 without range support, and undefined statuses are never stored`` () =
    let request = get "/x" [||]
    for status in [ 206; 304; 400; 401; 407; 408; 412; 413; 416; 421; 505; 299; 599; 103 ] do
        Assert.Equal(Storability.DoNotStore $"status {status} is not stored", CachePolicy.storability (request, { Status = status; Headers = [| "Cache-Control", "max-age=60" |] }))
    // A 503 with only a validator is not cacheable by default (RFC 9110 §15.1): not stored.
    Assert.Equal(Storability.DoNotStore "status 503 is stored only with explicit freshness or public", CachePolicy.storability (request, { Status = 503; Headers = [| "ETag", "\"e\"" |] }))
    Assert.Equal(Storability.Store, CachePolicy.storability (request, { Status = 503; Headers = [| "ETag", "\"e\""; "Cache-Control", "public" |] }))

[<Fact>]
let ``the usual cacheable responses are stored`` () =
    let request = get "/x" [||]
    let store headers = CachePolicy.storability (request, ok headers)
    Assert.Equal(Storability.Store, store [| "Cache-Control", "max-age=60" |])
    Assert.Equal(Storability.Store, store [| "Cache-Control", "public, s-maxage=60" |])
    Assert.Equal(Storability.Store, store [| "Expires", CachePolicy.formatDate (at.AddHours 1.0) |])
    Assert.Equal(Storability.Store, store [| "ETag", "\"a\"" |])
    Assert.Equal(Storability.Store, store [| "Cache-Control", "no-cache"; "Last-Modified", CachePolicy.formatDate at |])
    Assert.Equal(Storability.DoNotStore "no explicit freshness and no validator", store [| "Content-Type", "text/html" |])
    Assert.Equal(Storability.DoNotStore "unreadable Cache-Control", store [| "Cache-Control", "max-age=ten" |])
    Assert.Equal(Storability.DoNotStore "status 206 is not stored", CachePolicy.storability (request, { Status = 206; Headers = [| "Cache-Control", "max-age=60" |] }))

// ---- Keys -------------------------------------------------------------------------------------------

let private keyedRequest (app: string) =
    gen {
        let! methodName = keyPart
        let! scheme = keyPart
        let! host = keyPart
        let! target = keyPart
        let! headers = Gen.arrayOf (Gen.zip (Gen.elements [ "Cookie"; "Accept-Encoding"; "X-A" ]) keyPart) |> Gen.resize 3
        return { App = cacheApp app; Method = methodName; Scheme = scheme; Host = host; Target = target; Headers = headers }
    }

[<Property(MaxTest = 1000)>]
let ``a key of app A never equals a key of app B, whatever the rest of the requests`` () =
    let scenario =
        gen {
            let! a = keyPart
            let! b = keyPart |> Gen.filter ((<>) a)
            let! ra = keyedRequest a
            let! rb = keyedRequest b
            let! names = Gen.subListOf [ "accept-encoding"; "cookie"; "x-a" ] |> Gen.map Array.ofList
            return ra, rb, names
        }
    forAll scenario (fun (ra, rb, names) ->
        CachePolicy.primaryKey ra <> CachePolicy.primaryKey rb
        && CachePolicy.variantKey (ra, names) <> CachePolicy.variantKey (rb, names)
        && CachePolicy.variantKey (ra, names) <> CachePolicy.primaryKey rb)

[<Property(MaxTest = 500)>]
let ``the key names the method and the target; scheme and host count case-insensitively`` () =
    forAll (Gen.zip cacheRequest cacheRequest) (fun (a, b) ->
        let sameTarget =
            a.App.Name = b.App.Name && a.Method = b.Method && a.Target = b.Target
            && String.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
            && String.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase)
        (CachePolicy.primaryKey a = CachePolicy.primaryKey b) = sameTarget)

[<Property(MaxTest = 500)>]
let ``requests with the same Vary-selected fields share a variant, and a different selected field never does`` () =
    let scenario =
        gen {
            let! request = cacheRequest
            let! encodings = Gen.two (Gen.elements [ None; Some "gzip"; Some "br" ])
            let! other = Gen.elements [ "a"; "b" ]
            let withEncoding e (r: CacheRequest) =
                { r with
                    Headers =
                        [| yield! r.Headers |> Array.filter (fun (n, _) -> n <> "Accept-Encoding" && n <> "X-Other")
                           yield! e |> Option.map (fun v -> "Accept-Encoding", v) |> Option.toArray
                           "X-Other", other |] }
            return withEncoding (fst encodings) request, withEncoding (snd encodings) { request with Headers = request.Headers |> Array.rev }, encodings
        }
    forAll scenario (fun (a, b, (ea, eb)) ->
        let names = [| "accept-encoding" |]
        (CachePolicy.variantKey (a, names) = CachePolicy.variantKey (b, names)) = (ea = eb))

[<Property(MaxTest = 300)>]
let ``for Vary Cookie the persistence cookie is not part of the key, every other cookie is`` () =
    let scenario =
        gen {
            let! request = cacheRequest
            let! user = Gen.elements [ "alice"; "bob" ]
            let! server = Gen.elements [ "app1_1"; "app1_2" ]
            let! first = Gen.elements [ true; false ]
            let cookie = if first then $"SRVID={server}; user={user}" else $"user={user}; SRVID={server}"
            return { request with Headers = [| "Cookie", cookie |] }, { request with Headers = [| "Cookie", $"user={user}" |] }
        }
    forAll scenario (fun (pinned, plain) ->
        let names = [| "cookie" |]
        CachePolicy.variantKey (pinned, names) = CachePolicy.variantKey (plain, names)
        && CachePolicy.variantKey (plain, names) <> CachePolicy.variantKey ({ plain with Headers = [| "Cookie", "user=mallory" |] }, names)
        && CachePolicy.variantKey (plain, names) <> CachePolicy.variantKey ({ plain with Headers = [||] }, names))

[<Fact>]
let ``an unsafe request invalidates the GET and HEAD keys of its own target only`` () =
    let post = { get "/x?y=1" [||] with Method = "POST" }
    let keys = CachePolicy.invalidatedKeys (post, 201)
    Assert.Contains(CachePolicy.primaryKey (get "/x?y=1" [||]), keys)
    Assert.Contains(CachePolicy.primaryKey { get "/x?y=1" [||] with Method = "HEAD" }, keys)
    Assert.DoesNotContain(CachePolicy.primaryKey { get "/x?y=1" [||] with App = cacheApp "app2" }, keys)
    Assert.Empty(CachePolicy.invalidatedKeys (post, 500))
    Assert.Empty(CachePolicy.invalidatedKeys (get "/x?y=1" [||], 200))

// ---- Freshness and age ------------------------------------------------------------------------------

[<Property(MaxTest = 1000)>]
let ``the freshness lifetime is s-maxage, else max-age, else Expires minus Date, else zero`` () =
    let scenario =
        gen {
            let! sMaxAge = Gen.optionOf (Gen.choose (0, 1_000_000))
            let! maxAge = Gen.optionOf (Gen.choose (0, 1_000_000))
            let! expires = Gen.optionOf (Gen.choose (-100_000, 1_000_000))
            let! date = httpMoment
            let! shuffled = Gen.shuffle [| yield! sMaxAge |> Option.map (sprintf "s-maxage=%d") |> Option.toArray
                                           yield! maxAge |> Option.map (sprintf "max-age=%d") |> Option.toArray
                                           "public" |]
            let! received = Gen.choose (0, 1000) |> Gen.map (fun s -> date.AddSeconds(float s))
            let headers =
                [| "Cache-Control", String.Join(", ", shuffled)
                   "Date", CachePolicy.formatDate date
                   yield! expires |> Option.map (fun e -> "Expires", CachePolicy.formatDate (date.AddSeconds(float e))) |> Option.toArray |]
            return sMaxAge, maxAge, expires, stored (ok headers) received
        }
    forAll scenario (fun (sMaxAge, maxAge, expires, response) ->
        let expected =
            match sMaxAge, maxAge, expires with
            | Some s, _, _ -> s
            | None, Some m, _ -> m
            | None, None, Some e -> max 0 e
            | None, None, None -> 0
        CachePolicy.freshnessLifetime response = TimeSpan.FromSeconds(float expected))

[<Fact>]
let ``a repeated max-age, several Expires or an invalid Expires make a response stale`` () =
    let lifetime headers = CachePolicy.freshnessLifetime (stored (ok headers) at)
    Assert.Equal(TimeSpan.Zero, lifetime [| "Cache-Control", "max-age=60, max-age=10" |])
    Assert.Equal(TimeSpan.Zero, lifetime [| "Expires", "0" |])
    Assert.Equal(TimeSpan.Zero, lifetime [| "Expires", CachePolicy.formatDate (at.AddHours 1.0); "Expires", CachePolicy.formatDate (at.AddHours 2.0) |])
    Assert.Equal(TimeSpan.FromHours 1.0, lifetime [| "Expires", CachePolicy.formatDate (at.AddHours 1.0) |])

let private ageScenario =
    gen {
        let! date = httpMoment
        let! skew = Gen.choose (-3600, 3600)
        let! delay = Gen.choose (-10, 600)
        let! ageValue = Gen.choose (0, 100_000)
        let! steps = Gen.two (Gen.choose (-10_000, 1_000_000))
        let requestTime = date.AddSeconds(float skew)
        let responseTime = requestTime.AddSeconds(float delay)
        let now1, now2 = responseTime.AddSeconds(float (min (fst steps) (snd steps))), responseTime.AddSeconds(float (max (fst steps) (snd steps)))
        return date, TimeSpan.FromSeconds(float ageValue), requestTime, responseTime, now1, now2
    }

[<Property(MaxTest = 1000)>]
let ``the age never decreases as now grows, and is never negative`` () =
    forAll ageScenario (fun (date, ageValue, requestTime, responseTime, now1, now2) ->
        let a1 = CachePolicy.age (date, ageValue, requestTime, responseTime, now1)
        let a2 = CachePolicy.age (date, ageValue, requestTime, responseTime, now2)
        a1 >= TimeSpan.Zero && a1 <= a2)

[<Property(MaxTest = 1000)>]
let ``once received, a stored response ages at the speed of the clock`` () =
    forAll ageScenario (fun (date, ageValue, requestTime, responseTime, now1, now2) ->
        let a1 = CachePolicy.age (date, ageValue, requestTime, responseTime, now1)
        let a2 = CachePolicy.age (date, ageValue, requestTime, responseTime, now2)
        now1 < responseTime || a2 - a1 = now2 - now1)

[<Property(MaxTest = 500)>]
let ``the current age counts the Age header and the time since the response`` () =
    let scenario =
        gen {
            let! date = httpMoment
            let! age = Gen.choose (0, 10_000)
            let! later = Gen.choose (0, 10_000)
            return date, age, later
        }
    forAll scenario (fun (date, age, later) ->
        let response = stored (ok [| "Date", CachePolicy.formatDate date; "Age", string age |]) date
        CachePolicy.currentAge (response, date.AddSeconds(float later)) = TimeSpan.FromSeconds(float (age + later)))

[<Property(MaxTest = 300)>]
let ``an HTTP-date reads back as written`` () =
    forAll httpMoment (fun d -> CachePolicy.parseDate (CachePolicy.formatDate d, d) = Some d)

[<Fact>]
let ``the obsolete date forms are read too`` () =
    let expected = Some(DateTimeOffset(1994, 11, 6, 8, 49, 37, TimeSpan.Zero))
    Assert.Equal(expected, CachePolicy.parseDate ("Sun, 06 Nov 1994 08:49:37 GMT", at))
    Assert.Equal(expected, CachePolicy.parseDate ("Sunday, 06-Nov-94 08:49:37 GMT", at))
    Assert.Equal(expected, CachePolicy.parseDate ("Sun Nov  6 08:49:37 1994", at))
    Assert.Equal(None, CachePolicy.parseDate ("tomorrow", at))

// ---- Age (RFC 9111 §5.1) ----------------------------------------------------------------------------

[<Property(MaxTest = 1000)>]
let ``a response with an unparseable Age is never served as fresh`` () =
    let scenario =
        gen {
            let! ages = invalidAge
            let! headers = cacheResponseHeaders
            let! request = cacheRequest
            let! elapsed = Gen.choose (0, 100_000)
            let headers = Array.append (headers |> Array.filter (fun (n, _) -> n <> "Age")) (ages |> Array.map (fun a -> "Age", a))
            return request, ages, stored (ok headers) at, at.AddSeconds(float elapsed)
        }
    forAll scenario (fun (request, _, response, now) ->
        // Only a request that accepts any staleness (`max-stale` without a limit) may still get it.
        match CachePolicy.decide (request, Some response, now) with
        | CacheUse.Hit _ -> (CachePolicy.directives request.Headers).MaxStale = Some None
        | CacheUse.HitWhileRevalidating _ -> false
        | _ -> true)

[<Fact>]
let ``Age 7200, 0 on a max-age=3600 response is not fresh; Age 7200 is stale and Age 60 fresh`` () =
    let response age = stored (ok [| "Cache-Control", "max-age=3600"; "Date", CachePolicy.formatDate at; "Age", age |]) at
    let isHit age = match CachePolicy.decide (get "/x" [||], Some(response age), at.AddSeconds 1.0) with CacheUse.Hit _ -> true | _ -> false
    Assert.False(isHit "7200, 0")
    Assert.False(isHit "0, 7200")
    Assert.False(isHit "7200")
    Assert.True(isHit "60")
    Assert.True(isHit " 60 ")
    Assert.Equal(TimeSpan.FromSeconds 2147483648.0, CachePolicy.currentAge (response "7200, 0", at))

// ---- HTTP-dates (RFC 9110 §5.6.7) -------------------------------------------------------------------

[<Property(MaxTest = 500)>]
let ``an HTTP-date reads back in each of its three forms`` () =
    forAll httpMoment (fun d -> httpDateForms d |> List.forall (fun text -> CachePolicy.parseDate (text, d) = Some d))

[<Property(MaxTest = 1000)>]
let ``an HTTP-date with a doubled space, a tab, other case, another zone, the wrong day name or trailing text does not parse`` () =
    forAll spoiledHttpDate (fun (d, text) -> CachePolicy.parseDate (text, d) = None)

[<Property(MaxTest = 500)>]
let ``an Expires that is not an HTTP-date makes the response already expired`` () =
    forAll spoiledHttpDate (fun (d, text) ->
        let response = stored (ok [| "Date", CachePolicy.formatDate (d.AddDays -1.0); "Expires", text |]) (d.AddDays -1.0)
        CachePolicy.freshnessLifetime response = TimeSpan.Zero)

[<Fact>]
let ``an Expires with doubled spaces is invalid, so the response is stale at once`` () =
    let response expires = stored (ok [| "Date", "Tue, 01 Jul 2025 12:00:00 GMT"; "Expires", expires |]) at
    Assert.Equal(TimeSpan.Zero, CachePolicy.freshnessLifetime (response "Tue, 01 Jul 2025  13:00:00 GMT"))
    Assert.Equal(TimeSpan.Zero, CachePolicy.freshnessLifetime (response "Tue,  01 Jul 2025 13:00:00 GMT"))
    Assert.Equal(TimeSpan.Zero, CachePolicy.freshnessLifetime (response "Tue Jul  1 13:00:00  2025"))
    Assert.Equal(TimeSpan.FromHours 1.0, CachePolicy.freshnessLifetime (response "Tue, 01 Jul 2025 13:00:00 GMT"))
    Assert.Equal(TimeSpan.FromHours 1.0, CachePolicy.freshnessLifetime (response "Tuesday, 01-Jul-25 13:00:00 GMT"))
    Assert.Equal(TimeSpan.FromHours 1.0, CachePolicy.freshnessLifetime (response "Tue Jul  1 13:00:00 2025"))

[<Fact>]
let ``an rfc850 two-digit year is within 50 years after the message`` () =
    let received = DateTimeOffset(2026, 12, 8, 0, 0, 0, TimeSpan.Zero)
    Assert.Equal(Some(DateTimeOffset(2076, 11, 6, 8, 49, 37, TimeSpan.Zero)), CachePolicy.parseDate ("Friday, 06-Nov-76 08:49:37 GMT", received))
    Assert.Equal(Some(DateTimeOffset(1977, 11, 6, 8, 49, 37, TimeSpan.Zero)), CachePolicy.parseDate ("Sunday, 06-Nov-77 08:49:37 GMT", received))

// ---- delta-seconds beyond 2^31 (RFC 9111 §1.2.2) ----------------------------------------------------

[<Property(MaxTest = 500)>]
let ``max-age values above 2^31 behave as 2^31`` () =
    let scenario =
        gen {
            let! huge = hugeDeltaSeconds
            let! directive = Gen.elements [ "max-age"; "s-maxage" ]
            let! elapsed = Gen.choose (0, Int32.MaxValue)
            let! request = cacheRequest
            return huge, directive, elapsed, { request with Headers = request.Headers |> Array.filter (fun (n, _) -> n <> "Authorization") }
        }
    forAll scenario (fun (huge, directive, elapsed, request) ->
        let response value = ok [| "Cache-Control", $"public, {directive}={value}"; "Date", CachePolicy.formatDate at |]
        let now = at.AddSeconds(float elapsed)
        let capped, given = response "2147483648", response huge
        CachePolicy.storability (request, given) = CachePolicy.storability (request, capped)
        && CachePolicy.freshnessLifetime (stored given at) = TimeSpan.FromSeconds 2147483648.0
        && CachePolicy.decide (request, Some(stored given at), now) = CachePolicy.decide (request, Some(stored capped at), now))

[<Fact>]
let ``a response with max-age=2147483648 or more is stored and served fresh`` () =
    for value in [ "2147483648"; "4294967296"; "99999999999999999999" ] do
        let response = ok [| "Cache-Control", $"max-age={value}"; "Date", CachePolicy.formatDate at |]
        Assert.Equal(Storability.Store, CachePolicy.storability (get "/x" [||], response))
        Assert.Equal(CacheUse.Hit(TimeSpan.FromDays 365.0, false), CachePolicy.decide (get "/x" [||], Some(stored response at), at.AddDays 365.0))
    let minFresh = CachePolicy.directives [| "Cache-Control", "min-fresh=99999999999, max-stale=4294967296" |]
    Assert.Equal(Some(TimeSpan.FromSeconds 2147483648.0), minFresh.MinFresh)
    Assert.Equal(Some(Some(TimeSpan.FromSeconds 2147483648.0)), minFresh.MaxStale)

[<Fact>]
let ``Cache-Control arguments may be quoted, names are case-insensitive, and a member that is no directive is unreadable`` () =
    let cc = CachePolicy.directives [| "Cache-Control", "Max-Age=\"60\", S-MAXAGE=5, No-Cache=\"Set-Cookie, X-A\", ext=\"a,b\"" |]
    Assert.Equal((Some(TimeSpan.FromSeconds 60.0), Some(TimeSpan.FromSeconds 5.0), true, false), (cc.MaxAge, cc.SharedMaxAge, cc.NoCache, cc.Malformed))
    for bad in [ "max-age=ten"; "max-age=-1"; "max-age="; "max age=5"; "max-age=1.5"; "public, s-maxage=\"x\""; "max-stale=x" ] do
        Assert.True((CachePolicy.directives [| "Cache-Control", bad |]).Malformed, bad)
    let ignored = CachePolicy.directives [| "Cache-Control", "max-age=5, stale-while-revalidate=soon, stale-if-error=-1" |]
    Assert.Equal((false, None, None), (ignored.Malformed, ignored.StaleWhileRevalidate, ignored.StaleIfError))

// ---- stale-while-revalidate and stale-if-error (RFC 5861) -------------------------------------------

let private staleScenario =
    gen {
        let! maxAge = Gen.choose (0, 1000)
        let! window = Gen.choose (0, 1000)
        let! elapsed = Gen.choose (0, 3000)
        let! strict = Gen.frequency [ 4, Gen.constant ""; 1, Gen.elements [ "must-revalidate"; "proxy-revalidate"; "s-maxage"; "no-cache" ] ]
        let! etag = Gen.elements [ None; Some "\"e\"" ]
        return maxAge, window, elapsed, strict, etag
    }

/// `strict` "s-maxage" stands for `s-maxage` equal to max-age: the same lifetime, but stale is forbidden.
let private staleResponse maxAge (extension: string) strict etag =
    let strict = if strict = "s-maxage" then $"s-maxage={maxAge}" else strict
    let cc = String.Join(", ", [ $"max-age={maxAge}"; extension; strict ] |> List.filter ((<>) ""))
    stored (ok [| "Cache-Control", cc; "Date", CachePolicy.formatDate at; yield! etag |> Option.map (fun e -> "ETag", e) |> Option.toArray |]) at

[<Property(MaxTest = 1000)>]
let ``a stale response is served while revalidating only within its stale-while-revalidate, and never when it forbids stale`` () =
    forAll staleScenario (fun (maxAge, window, elapsed, strict, etag) ->
        let response = staleResponse maxAge $"stale-while-revalidate={window}" strict etag
        let fresh = elapsed < maxAge && strict <> "no-cache"
        match CachePolicy.decide (get "/x" [||], Some response, at.AddSeconds(float elapsed)) with
        | CacheUse.Hit(age, false) -> fresh && age = TimeSpan.FromSeconds(float elapsed)
        | CacheUse.HitWhileRevalidating(age, false) ->
            not fresh && strict = "" && elapsed - maxAge <= window && age = TimeSpan.FromSeconds(float elapsed)
        | CacheUse.Validate _ -> not fresh && etag.IsSome && (strict <> "" || elapsed - maxAge > window)
        | CacheUse.Miss _ -> not fresh && etag.IsNone && (strict <> "" || elapsed - maxAge > window)
        | _ -> false)

[<Fact>]
let ``a request with no-cache, a max-age below the age or min-fresh is not answered stale while revalidating`` () =
    let response = staleResponse 10 "stale-while-revalidate=100" "" (Some "\"e\"")
    let decide headers = CachePolicy.decide (get "/x" headers, Some response, at.AddSeconds 20.0)
    Assert.Equal(CacheUse.HitWhileRevalidating(TimeSpan.FromSeconds 20.0, false), decide [||])
    Assert.Equal(CacheUse.HitWhileRevalidating(TimeSpan.FromSeconds 20.0, true), decide [| "If-None-Match", "\"e\"" |])
    // The background revalidation's own request says max-age=0: it validates.
    for headers in [ [| "Cache-Control", "max-age=0" |]; [| "Cache-Control", "no-cache" |]; [| "Pragma", "no-cache" |]; [| "Cache-Control", "max-age=15" |]; [| "Cache-Control", "min-fresh=1" |] ] do
        Assert.Equal(CacheUse.Validate [| "If-None-Match", "\"e\"" |], decide headers)

/// A response with stale-while-revalidate, asked for around the end of its lifetime and window.
let private revalidationScenario =
    gen {
        let! maxAge, window, _, strict, etag = staleScenario
        let! past = Gen.choose (-10, window + 10)
        let! request = cacheRequest
        let! conditional = Gen.elements [ [||]; [| "If-None-Match", "\"x\"" |]; [| "If-Modified-Since", CachePolicy.formatDate at |] ]
        let! extra = Gen.frequency [ 3, Gen.constant [||]; 1, Gen.elements [ [| "Cache-Control", "max-stale" |]; [| "Pragma", "no-cache" |]; [| "Content-Length", "0" |] ] ]
        let headers = Array.concat [ request.Headers; conditional; extra ]
        return staleResponse maxAge $"stale-while-revalidate={window}" strict etag, { request with Headers = headers }, max 0 (maxAge + past)
    }

[<Fact>]
let ``coverage guard: one in ten revalidation scenarios or more is answered stale while revalidating`` () =
    let samples = Gen.sample 1000 revalidationScenario
    let stale =
        samples
        |> Array.filter (fun (response, request, elapsed) ->
            match CachePolicy.decide (request, Some response, at.AddSeconds(float elapsed)) with
            | CacheUse.HitWhileRevalidating _ -> true
            | _ -> false)
    Assert.True(stale.Length * 10 >= samples.Length, $"{stale.Length} of {samples.Length}")

[<Property(MaxTest = 1000)>]
let ``the background revalidation of an entry answered stale validates or fetches it, and carries no client conditional or directive`` () =
    forAll revalidationScenario (fun (response, request, elapsed) ->
        let now = at.AddSeconds(float elapsed)
        match CachePolicy.decide (request, Some response, now) with
        | CacheUse.HitWhileRevalidating _ ->
            let headers = CachePolicy.revalidationHeaders request.Headers
            let names = headers |> Array.map (fun (n, _) -> n.ToLowerInvariant())
            let background = { request with Headers = headers }
            names |> Array.forall (fun n -> not (n.StartsWith "if-" || n = "pragma" || n = "content-length"))
            && CachePolicy.values "Cache-Control" headers = [| "max-age=0" |]
            && (match CachePolicy.decide (background, Some response, now) with
                | CacheUse.Validate _ | CacheUse.Miss _ -> true
                | _ -> false)
        | _ -> true)

[<Property(MaxTest = 1000)>]
let ``a stale response answers a backend error only within stale-if-error, never for a status that is no error, never when it forbids stale`` () =
    let scenario =
        gen {
            let! maxAge, window, elapsed, strict, etag = staleScenario
            let! status = Gen.elements [ 0; 500; 502; 503; 504; 200; 404; 501; 505; 429; 304 ]
            let! inRequest = Gen.elements [ None; Some 0; Some 500; Some 5000 ]
            return maxAge, window, elapsed, strict, etag, status, inRequest
        }
    forAll scenario (fun (maxAge, window, elapsed, strict, etag, status, inRequest) ->
        let response = staleResponse maxAge $"stale-if-error={window}" strict etag
        let request = get "/x" (inRequest |> Option.map (fun s -> "Cache-Control", $"stale-if-error={s}") |> Option.toArray)
        let limit = defaultArg inRequest window
        CachePolicy.staleOnError (request, response, status, at.AddSeconds(float elapsed))
            = (List.contains status [ 0; 500; 502; 503; 504 ] && strict = "" && elapsed - maxAge <= limit))

[<Fact>]
let ``without stale-if-error, or with a client no-cache, a backend error is passed on`` () =
    let plain = staleResponse 10 "" "" (Some "\"e\"")
    Assert.False(CachePolicy.staleOnError (get "/x" [||], plain, 503, at.AddSeconds 11.0))
    Assert.True(CachePolicy.staleOnError (get "/x" [| "Cache-Control", "stale-if-error=60" |], plain, 503, at.AddSeconds 11.0))
    let tolerant = staleResponse 10 "stale-if-error=60" "" None
    Assert.True(CachePolicy.staleOnError (get "/x" [||], tolerant, 0, at.AddSeconds 69.0))
    Assert.False(CachePolicy.staleOnError (get "/x" [||], tolerant, 0, at.AddSeconds 71.0))
    Assert.False(CachePolicy.staleOnError (get "/x" [| "Cache-Control", "no-cache" |], tolerant, 503, at.AddSeconds 11.0))

// ---- Using a stored response ------------------------------------------------------------------------

[<Property(MaxTest = 500)>]
let ``a fresh response is served until its lifetime, then validated or fetched again`` () =
    let scenario =
        gen {
            let! maxAge = Gen.choose (1, 100_000)
            let! elapsed = Gen.choose (0, 200_000)
            let! etag = Gen.elements [ None; Some "\"e\"" ]
            return maxAge, elapsed, etag
        }
    forAll scenario (fun (maxAge, elapsed, etag) ->
        let headers =
            [| "Cache-Control", $"max-age={maxAge}"; "Date", CachePolicy.formatDate at; yield! etag |> Option.map (fun e -> "ETag", e) |> Option.toArray |]
        let response = stored (ok headers) at
        match CachePolicy.decide (get "/x" [||], Some response, at.AddSeconds(float elapsed)), etag with
        | CacheUse.Hit(age, false), _ -> elapsed < maxAge && age = TimeSpan.FromSeconds(float elapsed)
        | CacheUse.Validate conditionals, Some e -> elapsed >= maxAge && conditionals = [| "If-None-Match", e |]
        | CacheUse.Miss _, None -> elapsed >= maxAge
        | _ -> false)

[<Property(MaxTest = 500)>]
let ``no-cache on either side always validates, and without a validator fetches again`` () =
    let scenario =
        gen {
            let! inResponse = Gen.elements [ true; false ]
            let! pragma = Gen.elements [ true; false ]
            let! etag = Gen.elements [ None; Some "\"e\"" ]
            return inResponse, pragma, etag
        }
    forAll scenario (fun (inResponse, pragma, etag) ->
        let cc = if inResponse then "max-age=600, no-cache" else "max-age=600"
        let response = stored (ok [| "Cache-Control", cc; yield! etag |> Option.map (fun e -> "ETag", e) |> Option.toArray |]) at
        let requestHeaders =
            if inResponse then [||]
            elif pragma then [| "Pragma", "no-cache" |]
            else [| "Cache-Control", "no-cache" |]
        match CachePolicy.decide (get "/x" requestHeaders, Some response, at.AddSeconds 1.0), etag with
        | CacheUse.Validate _, Some _ -> true
        | CacheUse.Miss _, None -> true
        | _ -> false)

[<Property(MaxTest = 500)>]
let ``max-stale never serves a stale response that says must-revalidate, proxy-revalidate or s-maxage`` () =
    let scenario =
        gen {
            let! strict = Gen.elements [ "must-revalidate"; "proxy-revalidate"; "s-maxage=10"; "" ]
            let! elapsed = Gen.choose (11, 1000)
            return strict, elapsed
        }
    forAll scenario (fun (strict, elapsed) ->
        let cc = String.Join(", ", [ "max-age=10"; strict ] |> List.filter ((<>) ""))
        let response = stored (ok [| "Cache-Control", cc; "ETag", "\"e\"" |]) at
        let request = get "/x" [| "Cache-Control", "max-stale" |]
        match CachePolicy.decide (request, Some response, at.AddSeconds(float elapsed)) with
        | CacheUse.Hit _ -> strict = ""
        | CacheUse.Validate _ -> strict <> ""
        | _ -> false)

[<Fact>]
let ``only-if-cached answers 504 when nothing usable is stored`` () =
    let request = get "/x" [| "Cache-Control", "only-if-cached" |]
    Assert.Equal(CacheUse.GatewayTimeout, CachePolicy.decide (request, None, at))
    let stale = stored (ok [| "Cache-Control", "max-age=1"; "ETag", "\"e\"" |]) at
    Assert.Equal(CacheUse.GatewayTimeout, CachePolicy.decide (request, Some stale, at.AddSeconds 5.0))
    Assert.Equal(CacheUse.Miss "not stored", CachePolicy.decide (get "/x" [||], None, at))

[<Property(MaxTest = 300)>]
let ``a client's If-None-Match naming the stored ETag, weak or strong, gets 304 from the cache`` () =
    let scenario =
        gen {
            let! storedTag = Gen.elements [ "\"a\""; "W/\"a\""; "\"a,b\"" ]
            let! asked = Gen.elements [ "\"a\""; "W/\"a\""; "\"b\""; "*"; "\"x\", W/\"a\""; "\"a,b\"" ]
            return storedTag, asked
        }
    forAll scenario (fun (storedTag, asked) ->
        let response = stored (ok [| "Cache-Control", "max-age=60"; "ETag", storedTag |]) at
        let opaque (t: string) = t.Replace("W/", "")
        let expected = asked = "*" || (asked.Split(", ") |> Array.exists (fun t -> opaque t = opaque storedTag))
        CachePolicy.notModified (get "/x" [| "If-None-Match", asked |], response) = expected)

[<Fact>]
let ``If-Modified-Since gets 304 unless the stored response changed after it`` () =
    let response = stored (ok [| "Cache-Control", "max-age=60"; "Last-Modified", CachePolicy.formatDate at |]) at
    let since (d: DateTimeOffset) = CachePolicy.notModified (get "/x" [| "If-Modified-Since", CachePolicy.formatDate d |], response)
    Assert.True(since at)
    Assert.True(since (at.AddHours 1.0))
    Assert.False(since (at.AddHours -1.0))
    // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    Assert.False(CachePolicy.notModified (get "/x" [| "If-None-Match", "\"z\""; "If-Modified-Since", CachePolicy.formatDate at |], response))

// ---- The 304 merge ----------------------------------------------------------------------------------

[<Property(MaxTest = 500)>]
let ``a 304 replaces the stored fields it carries, keeps the others, never Content-Length, and resets the age`` () =
    let scenario =
        gen {
            let! original = cacheResponseHeaders
            let! update = cacheResponseHeaders
            let! dropLength = Gen.elements [ true; false ]
            return Array.append original [| "Content-Length", "1234" |], (if dropLength then update else Array.append update [| "Content-Length", "0" |])
        }
    forAll scenario (fun (original, update) ->
        let before = stored (ok original) at
        let after = CachePolicy.refresh (before, update, at.AddSeconds 10.0, at.AddSeconds 11.0)
        let names headers = headers |> Array.map (fun (n: string, _) -> n.ToLowerInvariant()) |> Set.ofArray
        let updated = names update |> Set.remove "content-length"
        let valuesOf name headers = CachePolicy.values name headers
        after.ResponseTime = at.AddSeconds 11.0
        && after.RequestTime = at.AddSeconds 10.0
        && after.Response.Status = 200
        && valuesOf "Content-Length" after.Response.Headers = [| "1234" |]
        && updated |> Set.forall (fun n -> valuesOf n after.Response.Headers = valuesOf n update)
        && (names original - updated - set [ "age" ]) |> Set.forall (fun n -> valuesOf n after.Response.Headers = valuesOf n original)
        && (updated.Contains "age" || (valuesOf "Age" after.Response.Headers).Length = 0))

[<Fact>]
let ``a hit carries the current Age and a 304 from the cache only the fields RFC 9110 lists`` () =
    let response = stored (ok [| "Cache-Control", "max-age=60"; "ETag", "\"e\""; "Age", "5"; "Content-Type", "text/html"; "Vary", "Cookie" |]) at
    let served = CachePolicy.servedHeaders (response, TimeSpan.FromSeconds 12.7)
    Assert.Equal<string array>([| "12" |], CachePolicy.values "Age" served)
    Assert.Equal<string array>([| "text/html" |], CachePolicy.values "Content-Type" served)
    let notModified = CachePolicy.notModifiedHeaders (response, TimeSpan.FromSeconds 3.0)
    Assert.Equal<string array>([| "Cache-Control"; "ETag"; "Vary"; "Age" |], notModified |> Array.map fst)

[<Fact>]
let ``a response is complete when its body has the Content-Length, or any length without one`` () =
    let response = ok [| "Content-Length", "10" |]
    Assert.True(CachePolicy.isComplete ("GET", response, 10L))
    Assert.False(CachePolicy.isComplete ("GET", response, 9L))
    Assert.True(CachePolicy.isComplete ("HEAD", response, 0L))
    Assert.True(CachePolicy.isComplete ("GET", ok [||], 123L))

// ---- Config -----------------------------------------------------------------------------------------

let private parse text = Config.parseText text "/etc/lb" (fun _ -> true)

let private withCache (cacheSection: string) (app: string) =
    $"""
[listen]
http = "127.0.0.1:8080"
plain_http = "proxy"
[cache]
{cacheSection}
[apps.app1]
servers = [ {{ name = "a", address = "127.0.0.1:9001" }} ]
{app}
"""

let private errorsOf text =
    match parse text with
    | Ok _ -> []
    | Error errors -> errors |> List.map (fun e -> e.Keyword, e.Message)

[<Fact>]
let ``the issue's [cache] loads, and apps opt in with cache = true`` () =
    match parse (withCache "memory = \"256MB\"\ndir = \"/var/cache/lb\"\nx_cache_header = true" "cache = true") with
    | Ok config ->
        Assert.Equal(256L <<< 20, config.Cache.MemoryBytes)
        Assert.Equal(Some "/var/cache/lb", config.Cache.Dir)
        Assert.True(config.Cache.XCacheHeader)
        Assert.True(config.Apps[0].Cache)
        Assert.Equal(1L <<< 20, config.Cache.MaxEntryBytes)
    | Error errors -> failwithf "%A" errors

[<Fact>]
let ``without [cache] the defaults hold and no app is cached`` () =
    match parse ((withCache "" "").Replace("[cache]", "")) with
    | Ok config ->
        Assert.Equal(Config.defaultCache, config.Cache)
        Assert.False(config.Apps[0].Cache)
    | Error errors -> failwithf "%A" errors

[<Fact>]
let ``every [cache] key is checked, with its keyword in the error`` () =
    Assert.Equal<(string * string) list>([ "cache.memory", "'256' is not a size" ], errorsOf (withCache "memory = \"256\"" ""))
    Assert.Equal<(string * string) list>([ "cache.memory", "'1KB' is out of range" ], errorsOf (withCache "memory = \"1KB\"" ""))
    Assert.Equal<(string * string) list>([ "cache.max_entry", "'2MB' is out of range" ], errorsOf (withCache "memory = \"1MB\"\nmax_entry = \"2MB\"" ""))
    Assert.Equal<(string * string) list>([ "cache.disk", "disk has no effect without dir" ], errorsOf (withCache "disk = \"1GB\"" ""))
    Assert.Equal<(string * string) list>([ "cache.dir", "empty" ], errorsOf (withCache "dir = \"\"" ""))
    Assert.Equal<(string * string) list>([ "cache.x_cache_header", "expected true or false, found a string" ], errorsOf (withCache "x_cache_header = \"yes\"" ""))
    Assert.Equal<(string * string) list>([ "apps.app1.cache", "expected true or false, found a string" ], errorsOf (withCache "" "cache = \"on\""))
    Assert.Equal<(string * string) list>([ "cache.memroy", "unknown key" ], errorsOf (withCache "memroy = \"1MB\"" ""))

[<Fact>]
let ``a relative cache dir is under the config folder`` () =
    match parse (withCache "dir = \"cache\"" "") with
    | Ok config -> Assert.Equal(Some(IO.Path.GetFullPath "/etc/lb/cache"), config.Cache.Dir)
    | Error errors -> failwithf "%A" errors

[<Property(MaxTest = 300)>]
let ``a size reads back as written, in every unit`` () =
    let scenario =
        gen {
            let! n = Gen.choose (1, 100_000)
            let! unitName, multiplier = Gen.elements [ "B", 1L; "KB", 1L <<< 10; "kb", 1L <<< 10; "MiB", 1L <<< 20; "GB", 1L <<< 30; " TB", 1L <<< 40 ]
            return $"{n}{unitName}", int64 n * multiplier
        }
    forAll scenario (fun (text, bytes) ->
        Config.parseSize text = Some bytes && Config.parseSize (Config.formatSize bytes) = Some bytes)

[<Fact>]
let ``sizes that are not sizes are refused`` () =
    for text in [ ""; "MB"; "12"; "1.5MB"; "-1MB"; "1 PB"; "999999999999TB" ] do
        Assert.Equal(None, Config.parseSize text)
