/// Issue 8, hostile requests at the Rules level: the laws every decision keeps whatever a client sends, each run
/// over 10⁴-10⁵ generated requests (paths with dot-segments, `%2F`, `%2e`, double slashes, overlong and Unicode
/// targets; headers with CR/LF/NUL, oversize values and duplicates; forged persistence cookies). Each law runs
/// as one FsCheck check with an explicit case count and records the count it actually ran in the reliability
/// table, only after it passed. The same requests over real sockets: Host.Tests HostileHttpTests.
module Lb.Rules.Tests.HostileRequestTests

open System
open System.Threading
open Xunit
open FsCheck
open FsCheck.FSharp
open Lb.Rules
open Lb.Rules.Tests.Generators

/// Runs `law` over `cases` generated values (throwing with the shrunk counterexample on failure) and returns how
/// many times the law's body actually ran: the count the reliability table shows.
let private checkCounted (cases: int) (g: Gen<'T>) (law: 'T -> bool) : int64 =
    let ran = ref 0L
    let counted value =
        Interlocked.Increment &ran.contents |> ignore
        law value
    Check.One(FsCheck.Config.QuickThrowOnFailure.WithMaxTest(cases), Prop.forAll (Arb.fromGen g) counted)
    Interlocked.Read &ran.contents

let private breaksHeader (s: string) = s.IndexOfAny [| '\r'; '\n'; '\000' |] >= 0

/// The app a target names: the first segment of its normalised path (absolute-form read as its path, RFC 9112
/// §3.2.2), or None when the path does not normalise.
let private namedApp (target: string) =
    let target = if target.StartsWith '/' then target else Routing.originForm target
    let path, _ = Routing.splitTarget target
    match Paths.normalize path with
    | Ok normalised -> Some(fst (Paths.firstSegment normalised))
    | Error _ -> None

/// No segment of the path is `.` or `..`, literally or with its dots percent-encoded.
let private hasDotSegment (target: string) =
    (fst (Routing.splitTarget target)).Split '/'
    |> Array.exists (fun s -> (s.Replace("%2e", ".").Replace("%2E", ".")) = "." || (s.Replace("%2e", ".").Replace("%2E", ".")) = "..")

/// How the hostile requests of one run were decided (to show the generator reaches every outcome).
type private Outcomes = { mutable Rejected: int64; mutable Redirected: int64; mutable Forwarded: int64 }

[<Fact>]
let ``a hostile request is refused with a 4xx, redirected within its app, or forwarded to exactly the app its normalised path names`` () =
    let seen = { Rejected = 0L; Redirected = 0L; Forwarded = 0L }
    let law (request: RequestFacts) =
        match Routing.decide routingSnapshot request with
        | Reject reason ->
            Interlocked.Increment &seen.Rejected |> ignore
            reason.Status >= 400 && reason.Status < 500
        | Redirect(status, location, _) ->
            Interlocked.Increment &seen.Redirected |> ignore
            let intoItsApp =
                // `/app1` → `/app1/`, or plain HTTP → https with the same target.
                location.StartsWith "https://" || namedApp location = namedApp request.RawTarget
            status >= 300 && status < 400 && not (breaksHeader location) && intoItsApp
        | Forward plan ->
            Interlocked.Increment &seen.Forwarded |> ignore
            namedApp request.RawTarget = Some plan.App.Name
            && obj.ReferenceEquals(plan.App, routingConfig.Apps[plan.AppIndex])
            && not (hasDotSegment plan.BackendTarget)
    let ran = checkCounted 100_000 hostileRequest law
    // A generator that never reached an outcome would make the law hold vacuously there.
    Assert.True(seen.Forwarded > ran / 20L && seen.Rejected > ran / 20L && seen.Redirected > 0L, $"%A{seen}")
    Reliability.record "requests" "Rules: hostile request -> 4xx, redirect in its app, or its app only" ran 0L ran 0L

// ---- encoded_slashes: the same hostile requests in each of the three modes ------------------------------

let private snapshotsByMode = dict [ for m in encodedSlashModes -> m, routingSnapshotIn m ]

/// The app a target names in `mode`: the first segment of its path as `Paths.normalizeIn` makes it, or None.
let private namedAppIn (mode: EncodedSlashes) (target: string) =
    let target = if target.StartsWith '/' then target else Routing.originForm target
    let path, _ = Routing.splitTarget target
    match Paths.normalizeIn (mode, path) with
    | Ok normalised -> Some(fst (Paths.firstSegment normalised))
    | Error _ -> None

/// Whether the request's path (not its query) holds an encoded slash or backslash, in any case, or a literal `\`.
let private holdsEncodedSlash (target: string) =
    let target = if target.StartsWith '/' then target else Routing.originForm target
    let path = (fst (Routing.splitTarget target)).ToUpperInvariant()
    path.Contains "%2F" || path.Contains "%5C" || path.Contains '\\'

/// What a backend that percent-decodes once sees as path segments: split at `/` and `\`, decoded ones too.
let private decodedSegments (target: string) =
    Uri.UnescapeDataString(fst (Routing.splitTarget target)).Split([| '/'; '\\' |])

let private isDot (s: string) = s = "." || s = ".."

/// Per mode: requests forwarded, forwarded with an encoded slash in the request, refused because of one.
type private ModeCoverage = { mutable Forwarded: int64; mutable ForwardedWithSlash: int64; mutable RefusedForSlash: int64 }

[<Fact>]
let ``in every encoded_slashes mode a request routed to an app reaches only that app's servers, and no backend path decodes to a dot segment`` () =
    let seen = dict [ for m in encodedSlashModes -> m, { Forwarded = 0L; ForwardedWithSlash = 0L; RefusedForSlash = 0L } ]
    let law (mode: EncodedSlashes, request: RequestFacts) =
        let snapshot = snapshotsByMode[mode]
        let counts = seen[mode]
        let slash = holdsEncodedSlash request.RawTarget
        match Routing.decide snapshot request with
        | Forward plan ->
            Interlocked.Increment &counts.Forwarded |> ignore
            if slash then Interlocked.Increment &counts.ForwardedWithSlash |> ignore
            let backendPath = (fst (Routing.splitTarget plan.BackendTarget)).ToUpperInvariant()
            namedAppIn mode request.RawTarget = Some plan.App.Name
            && obj.ReferenceEquals(plan.App, snapshot.Config.Apps[plan.AppIndex])
            && plan.ServerAuthorities = (plan.App.Servers |> Array.map (fun s -> (string s.Address).ToLowerInvariant()))
            && decodedSegments plan.BackendTarget |> Array.forall (isDot >> not)
            // Reject mode: no forwarded path holds an encoded slash or backslash.
            && (mode <> EncodedSlashes.Reject || not (backendPath.Contains "%2F" || backendPath.Contains "%5C" || backendPath.Contains '\\'))
            // Decode mode: every one was decoded.
            && (mode <> EncodedSlashes.Decode || not (backendPath.Contains "%2F" || backendPath.Contains "%5C"))
        | Reject reason ->
            if slash then Interlocked.Increment &counts.RefusedForSlash |> ignore
            reason.Status >= 400 && reason.Status < 500
        | Redirect(status, _, _) -> status >= 300 && status < 400
    let cases = Gen.zip (Gen.elements encodedSlashModes) hostileRequest
    let ran = checkCounted 60_000 cases law
    // Coverage guard: each mode forwarded requests and met encoded slashes; keep and decode forwarded some of them.
    for m in encodedSlashModes do
        Assert.True(seen[m].Forwarded > 0L && seen[m].RefusedForSlash > 0L, $"{m}: %A{seen[m]}")
    Assert.True(seen[EncodedSlashes.Keep].ForwardedWithSlash > 0L && seen[EncodedSlashes.Decode].ForwardedWithSlash > 0L, $"%A{seen}")
    Reliability.record "requests" "Rules: hostile request in each encoded_slashes mode -> its app only, no dot segment decoded" ran 0L ran 0L

[<Fact>]
let ``in reject mode a hostile path with an encoded slash is never forwarded, and one in keep mode keeps it encoded`` () =
    let rejected = ref 0L
    let law (request: RequestFacts) =
        let reject = Routing.decide snapshotsByMode[EncodedSlashes.Reject] request
        let keep = Routing.decide snapshotsByMode[EncodedSlashes.Keep] request
        match reject, keep with
        | Forward _, _ when holdsEncodedSlash request.RawTarget -> false
        | Forward r, Forward k -> r.BackendTarget = k.BackendTarget && r.App.Name = k.App.Name
        // Keep refuses an encoded dot segment (`%2e%2e`) that reject resolves like `..`.
        | Forward _, Reject(BadRequest reason) -> reason.StartsWith "an encoded dot segment"
        | Forward _, _ -> false
        | Reject(NotFound _), _ when holdsEncodedSlash request.RawTarget ->
            Interlocked.Increment &rejected.contents |> ignore
            true
        | _ -> true
    let ran = checkCounted 30_000 hostileRequest law
    Assert.True(rejected.Value > 0L, "no generated request had an encoded slash refused with 404")
    Reliability.record "requests" "Rules: reject mode never forwards an encoded slash; keep forwards what reject does, unchanged" ran 0L ran 0L

[<Fact>]
let ``no header value lb emits for a hostile request contains CR, LF or NUL`` () =
    let law (request: RequestFacts) =
        let cookies = request.Headers |> Array.filter (fun (n, _) -> n.Equals("Cookie", StringComparison.OrdinalIgnoreCase)) |> Array.map snd
        match Routing.decide routingSnapshot request with
        | Forward plan ->
            let backendCookies = Persistence.backendCookieHeaders (plan.App, cookies)
            let setCookie = Persistence.setCookieFor (plan.App, 0, request.IsHttps)
            not (breaksHeader plan.BackendTarget)
            && plan.RequestHeaders |> Array.forall (fun (n, v) -> not (breaksHeader n || breaksHeader v))
            && backendCookies |> Array.forall (breaksHeader >> not)
            && not (breaksHeader setCookie)
        | Redirect(_, location, _) -> not (breaksHeader location)
        | Reject _ -> true
    let ran = checkCounted 30_000 hostileRequest law
    Reliability.record "requests" "Rules: no emitted header value holds CR, LF or NUL" ran 0L ran 0L

/// An app of `routingConfig` in named or opaque cookie mode, the cookie values of every other app's servers in
/// both modes, a usable mask (sometimes short), and 1-3 forged persistence values placed among hostile cookies.
let private forgedScenario =
    gen {
        let! mode = Gen.elements [ CookieValueMode.Named; CookieValueMode.Opaque ]
        let valuesIn (app: AppConfig) m =
            app.Servers |> Array.map (fun s -> Cookies.cookieValueFor (m, app.Name, s.Name, string s.Address, None))
        let! index = Gen.choose (0, routingConfig.Apps.Length - 1)
        let source = routingConfig.Apps[index]
        let app =
            { source with
                Persistence = { source.Persistence with Mode = mode }
                Servers = Array.map2 (fun (s: ServerConfig) v -> { s with CookieValue = v }) source.Servers (valuesIn source mode) }
        let others =
            routingConfig.Apps
            |> Array.filter (fun a -> a.Name <> app.Name)
            |> Array.collect (fun a -> Array.append (valuesIn a CookieValueMode.Named) (valuesIn a CookieValueMode.Opaque))
        let own = app.Servers |> Array.map (fun s -> s.CookieValue)
        // A `;` inside a value would make a second pair: the forged value is what reaches the parser whole.
        let! forged = forgedPersistenceValue own others |> Gen.filter (fun v -> not (v.Contains ';')) |> Gen.listOf |> Gen.resize 3 |> Gen.map (fun l -> if l.IsEmpty then [ "x" ] else l)
        let! headers = cookieHeadersWith app.Persistence.Cookie.Value forged
        let! usable = Gen.arrayOfLength app.Servers.Length (Gen.frequency [ 3, Gen.constant true; 1, Gen.constant false ])
        let! short = Gen.frequency [ 5, Gen.constant false; 1, Gen.constant true ]
        return app, forged, headers, (if short then Array.truncate 1 usable else usable)
    }

[<Fact>]
let ``a forged persistence cookie never pins a server of another app, an unknown server or one that is down`` () =
    let pinned = ref 0L
    let law (app: AppConfig, forged: string list, headers: string[], usable: bool[]) =
        // RFC 6265 §5.2: a value is read with the spaces and tabs around it removed; nothing else is equal.
        let sent (value: string) = forged |> List.exists (fun f -> f.Trim [| ' '; '\t' |] = value)
        match firstChoice app headers usable with
        | Pinned i ->
            Interlocked.Increment &pinned.contents |> ignore
            i >= 0 && i < app.Servers.Length && i < usable.Length && usable[i] && sent app.Servers[i].CookieValue
        | _ -> not (app.Servers |> Array.mapi (fun i s -> i < usable.Length && usable[i] && forged.[0] = s.CookieValue && forged.Length = 1) |> Array.exists id)
    let ran = checkCounted 30_000 forgedScenario law
    // The real value is generated sometimes: the law was tested on pins as well as refusals.
    Assert.True(pinned.Value > 0L, "no generated cookie pinned a server")
    Reliability.record "requests" "Rules: forged persistence cookie never pins another app's/unknown/down server" ran 0L ran 0L
