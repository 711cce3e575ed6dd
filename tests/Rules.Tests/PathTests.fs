module Lb.Rules.Tests.PathTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules
open Lb.Rules.Tests.Generators

let private segments (path: string) = path.Split '/' |> Array.skip 1

[<Property>]
let ``a normalised path starts with a slash and holds no dot-segment or empty segment before the last`` () =
    Prop.forAll (Arb.fromGen hostilePath) (fun path ->
        match Paths.normalize path with
        | Error _ -> true
        | Ok p ->
            let segs = segments p
            p.StartsWith "/"
            && not (p.Contains "//")
            && segs |> Array.forall (fun s -> s <> "." && s <> ".."))

[<Property(MaxTest = 2000)>]
let ``the fast path for already-normal paths agrees with full normalisation`` () =
    Prop.forAll (Arb.fromGen hostilePath) (fun path -> Paths.normalize path = Paths.normalizeFully path)

[<Fact>]
let ``an already-normal path is returned as the same string, not a copy`` () =
    for path in [ "/"; "/app2/bench"; "/app1/a.b/c..d/.e/f.~-_/x;p=1@:"; "/app1/" ] do
        match Paths.normalize path with
        | Ok p -> Assert.Same(path, p)
        | Error e -> failwith e
    for path in [ "/app1//x"; "/app1/./x"; "/app1/../x"; "/app1/.."; "/a/."; "/%41"; "/é" ] do
        Assert.False(Paths.isAlreadyNormal path, path)

[<Property>]
let ``normalisation is idempotent`` () =
    Prop.forAll (Arb.fromGen hostilePath) (fun path ->
        match Paths.normalize path with
        | Error _ -> true
        | Ok p -> Paths.normalize p = Ok p)

[<Property>]
let ``a normalised path never holds a control character, a space or a backslash`` () =
    Prop.forAll (Arb.fromGen hostilePath) (fun path ->
        match Paths.normalize path with
        | Error _ -> true
        | Ok p -> p |> Seq.forall (fun c -> c > ' ' && c < '\u007f' && c <> '\\'))

[<Property>]
let ``normalisation never creates a separator: an encoded slash stays data`` () =
    Prop.forAll (Arb.fromGen hostilePath) (fun path ->
        let slashes (s: string) = s |> Seq.filter ((=) '/') |> Seq.length
        match Paths.normalize path with
        | Error _ -> true
        | Ok p -> slashes p <= slashes path)

/// What the running lb sends the backend for a public path: the plan's `BackendTarget` (the prefix stripped).
let private backendTarget (path: string) =
    match Routing.decide keepingSnapshot (request true path) with
    | Forward plan -> Some plan.BackendTarget
    | _ -> None

[<Property>]
let ``the backend target is the public path with the app's prefix stripped, and re-adding the prefix gives the path back`` () =
    Prop.forAll (Arb.fromGen pathUnder) (fun (app, path) ->
        let prefix = "/" + app
        match backendTarget path with
        | Some rest -> rest.StartsWith "/" && prefix + rest = path
        | None -> false)

/// `Routing.decide` on `/app/...` in reject mode: 404 exactly when the path holds an encoded slash.
[<Property>]
let ``in reject mode a path under an app is forwarded unless it holds an encoded slash, which gets 404`` () =
    Prop.forAll (Arb.fromGen pathUnder) (fun (_, path) ->
        match Routing.decide (routingSnapshotIn EncodedSlashes.Reject) (request true path) with
        | Forward plan -> not (path.Contains "%2F") && plan.BackendTarget = (backendTarget path).Value
        | Reject(NotFound _) -> path.Contains "%2F"
        | _ -> false)

// ---- encoded_slashes: the three modes of Paths.normalizeIn ---------------------------------------------

let private modeAndPath = Gen.zip (Gen.elements encodedSlashModes) hostilePath

let private isDot (s: string) = s = "." || s = ".."

/// What a backend that percent-decodes the path once sees as segments: `%2F` and `%5C` (and `\`) split too.
let decodedSegments (path: string) = Uri.UnescapeDataString(path).Split([| '/'; '\\' |])

[<Property(MaxTest = 3000)>]
let ``in every mode a path lb accepts starts with a slash and no segment decodes to a dot segment, even split at decoded slashes`` () =
    Prop.forAll (Arb.fromGen modeAndPath) (fun (mode, path) ->
        match Paths.normalizeIn (mode, path) with
        | Error _ -> true
        | Ok p -> p.StartsWith "/" && not (p.Contains "//") && decodedSegments p |> Array.forall (isDot >> not))

[<Property(MaxTest = 3000)>]
let ``normalisation is idempotent in every mode`` () =
    Prop.forAll (Arb.fromGen modeAndPath) (fun (mode, path) ->
        match Paths.normalizeIn (mode, path) with
        | Error _ -> true
        | Ok p -> Paths.normalizeIn (mode, p) = Ok p)

[<Property(MaxTest = 3000)>]
let ``reject and keep accept only what normalize gives, and reject never an encoded slash; decode leaves none`` () =
    Prop.forAll (Arb.fromGen modeAndPath) (fun (mode, path) ->
        match mode, Paths.normalizeIn (mode, path) with
        | _, Error(PathRefusal.EncodedSlash _) -> mode = EncodedSlashes.Reject
        | _, Error(PathRefusal.Malformed _) -> true
        | EncodedSlashes.Reject, Ok p -> Paths.normalize path = Ok p && not (Paths.holdsEncodedSlash p)
        | EncodedSlashes.Keep, Ok p -> Paths.normalize path = Ok p
        | EncodedSlashes.Decode, Ok p -> not (Paths.holdsEncodedSlash p) && not (p.Contains '\\'))

[<Fact>]
let ``on a path without an encoded slash reject and decode agree, and keep too unless it refuses an encoded dot segment`` () =
    let refused = Collections.Generic.HashSet<EncodedSlashes>()
    let law (path: string) =
        let inMode m =
            let r = Paths.normalizeIn (m, path)
            if Result.isError r then refused.Add m |> ignore
            r
        let reject, keep, decode = inMode EncodedSlashes.Reject, inMode EncodedSlashes.Keep, inMode EncodedSlashes.Decode
        let raw = path.ToUpperInvariant()
        if raw.Contains "%2F" || raw.Contains "%5C" || raw.Contains '\\' then true
        else
            reject = decode
            && (keep = reject
                || match keep with
                   | Error(PathRefusal.Malformed reason) -> reason.StartsWith "an encoded dot segment"
                   | _ -> false)
    Check.One(FsCheck.Config.QuickThrowOnFailure.WithMaxTest 5000, Prop.forAll (Arb.fromGen hostilePath) law)
    // Coverage guard: each mode refused some generated paths (else its refusals were never tried).
    for m in encodedSlashModes do
        Assert.True(refused.Contains m, $"no path refused in mode {m}")

[<Fact>]
let ``dot-segments are removed as RFC 3986 section 5.2.4 examples show`` () =
    Assert.Equal("/a/g", Paths.removeDotSegments "/a/b/c/./../../g")
    Assert.Equal("/x", Paths.removeDotSegments "/../x")
    Assert.Equal("/app2/x", Paths.removeDotSegments "/app1/../app2/x")
    Assert.Equal("/a/", Paths.removeDotSegments "/a/b/..")

[<Fact>]
let ``encoded dots are dot-segments and encoded slashes are data`` () =
    Assert.Equal(Ok "/app2/x", Paths.normalize "/app1/%2e%2E/app2/x")
    Assert.Equal(Ok "/app1%2F..%2Fapp2/x", Paths.normalize "/app1%2F..%2Fapp2/x")
    Assert.Equal(Ok "/app1/x", Paths.normalize "//app1//x")
    Assert.Equal(Ok "/~a/%C3%A9", Paths.normalize "/%7ea/é")

[<Fact>]
let ``control characters and broken escapes are refused`` () =
    for bad in [ "/a%00"; "/a%0d%0a"; "/a%zz"; "/a%4"; "relative"; ""; "/a\r\nb" ] do
        Assert.True(Result.isError (Paths.normalize bad), bad)

// ---- The encoded-slash table (docs/config.md quotes it) ------------------------------------------------

/// Tricky targets for `encoded_slashes`: encoded slashes as data, next to dot segments, in each case, as
/// backslashes (encoded and literal), doubled, double-encoded, in the app's own segment, and in the query.
let encodedSlashTargets =
    [ "/app1/a%2Fb"
      "/app1/a%2fb"
      "/app1/..%2Fapp2/x"
      "/app1/%2e%2e%2Fapp2/x"
      "/app1/%2F..%2Fapp2/x"
      "/app1/.%2F"
      "/app1/x%2F.."
      "/app1/a%5Cb"
      "/app1/..%5capp2/x"
      "/app1/a\\b"
      "/app1\\..\\app2/x"
      "/app1/%2F"
      "/app1/%2F%2Fx"
      "/app1/x%252F"
      "/app1/x%252F..%252Fapp2"
      "/app1%2F..%2Fapp2/x"
      "/app2%2Fx"
      "/app1/%2e%2e/app2/x"
      "/app1/..%2F..%2F..%2Fetc/passwd"
      "/app1/x?q=%2F..%2F" ]

/// One cell: what `Routing.decide` (the running lb's decision) does with the target in that mode.
let private cell (decision: Decision) =
    match decision with
    | Forward plan -> $"200 → {plan.App.Name} `{plan.BackendTarget}`"
    | Redirect(status, location, _) -> $"{status} → `{location}`"
    | Reject reason -> string reason.Status

/// The Markdown table: one row per target, one column per mode, each cell the status and backend path.
let encodedSlashTable () =
    let header = "| request target | `reject` (default) | `keep` | `decode` |\n|---|---|---|---|\n"
    let rows =
        [ for target in encodedSlashTargets ->
              let cells = [ for m in encodedSlashModes -> cell (Routing.decide (routingSnapshotIn m) (request true target)) ]
              $"| `{target}` | " + String.Join(" | ", cells) + " |\n" ]
    header + String.Join("", rows)

[<Fact>]
let ``the encoded-slash table: reject answers 404, keep refuses traversals with 400, decode routes like literal slashes`` () =
    let decideIn m target = Routing.decide (routingSnapshotIn m) (request true target)
    let backend m target =
        match decideIn m target with
        | Forward plan -> Some(plan.App.Name, plan.BackendTarget)
        | _ -> None
    let status m target = (match decideIn m target with Reject r -> r.Status | Forward _ -> 200 | Redirect(s, _, _) -> s)
    // The issue's request in each mode.
    Assert.Equal(404, status EncodedSlashes.Reject "/app1/..%2Fapp2/x")
    Assert.Equal(400, status EncodedSlashes.Keep "/app1/..%2Fapp2/x")
    Assert.Equal(Some("app2", "/x"), backend EncodedSlashes.Decode "/app1/..%2Fapp2/x")
    // Data, not a traversal: keep forwards it encoded, decode splits it.
    Assert.Equal(Some("app1", "/a%2Fb"), backend EncodedSlashes.Keep "/app1/a%2fb")
    Assert.Equal(Some("app1", "/a/b"), backend EncodedSlashes.Decode "/app1/a%2fb")
    Assert.Equal(Some("app1", "/a/b"), backend EncodedSlashes.Decode "/app1/a%5Cb")
    // Double encoding is decoded once, like every other escape: `%252F` is data in every mode.
    for m in encodedSlashModes do
        Assert.Equal(Some("app1", "/x%252F"), backend m "/app1/x%252F")
        Assert.Equal(Some("app1", "/x?q=%2F..%2F"), backend m "/app1/x?q=%2F..%2F")
    // A traversal out of every app is resolved and then names none.
    Assert.Equal(404, status EncodedSlashes.Decode "/app1/..%2F..%2F..%2Fetc/passwd")
    let table = encodedSlashTable ()
    let folder = IO.Path.Combine(Reliability.repositoryRoot (), "artifacts")
    IO.Directory.CreateDirectory folder |> ignore
    IO.File.WriteAllText(
        IO.Path.Combine(folder, "encoded-slashes.md"),
        "# encoded_slashes: mode × tricky path → status and backend path\n\n"
        + "Generated by Rules.Tests PathTests (`Routing.decide` on `Generators.routingConfig`, over https); "
        + "a cell is the status and, when forwarded, the app and the target its server receives.\n\n"
        + table)
    // docs/config.md quotes the table as generated: a change of behaviour shows up there or fails here.
    let docs = IO.File.ReadAllText(IO.Path.Combine(Reliability.repositoryRoot (), "docs", "config.md"))
    Assert.True(docs.Contains table, "docs/config.md does not quote artifacts/encoded-slashes.md's table; copy it there:\n" + table)
