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
    match Routing.decide (Snapshot routingConfig) (request true path) with
    | Forward plan -> Some plan.BackendTarget
    | _ -> None

[<Property>]
let ``the backend target is the public path with the app's prefix stripped, and re-adding the prefix gives the path back`` () =
    Prop.forAll (Arb.fromGen pathUnder) (fun (app, path) ->
        let prefix = "/" + app
        match backendTarget path with
        | Some rest -> rest.StartsWith "/" && prefix + rest = path
        | None -> false)

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
