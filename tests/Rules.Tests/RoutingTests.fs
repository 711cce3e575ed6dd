module Lb.Rules.Tests.RoutingTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules
open Lb.Rules.Tests.Generators

let private decide isHttps target = Routing.decide routingSnapshot (request isHttps target)

let private target = Gen.map2 (+) hostilePath query

/// The coverage guard of the laws about forwarded requests: they hold trivially for the rest.
let private isForwarded t =
    match decide true t with
    | Forward _ -> true
    | _ -> false

[<Fact>]
let ``a request routed to app A can only reach servers of app A`` () =
    let law t =
        match decide true t with
        | Forward plan ->
            let path, _ = Routing.splitTarget t
            let normalised = Paths.normalize path |> Result.defaultValue "?"
            let segment, _ = Paths.firstSegment normalised
            let app = routingConfig.Apps |> Array.find (fun a -> a.Name = segment)
            plan.App = app
            && obj.ReferenceEquals(plan.App.Servers, app.Servers)
            && plan.Response.ServerAuthorities = (app.Servers |> Array.map (fun s -> string s.Address))
        | _ -> true
    let forwarded = checkWithCoverage 2000 target law isForwarded
    Assert.True(forwarded > 100L, $"only {forwarded} of 2000 generated requests were forwarded")

[<Fact>]
let ``a forwarded request never sends a dot-segment to a backend`` () =
    let law t =
        match decide true t with
        | Forward plan ->
            let path, _ = Routing.splitTarget plan.BackendTarget
            path.StartsWith "/" && path.Split '/' |> Array.forall (fun s -> s <> ".." && s <> ".")
        | _ -> true
    let forwarded = checkWithCoverage 2000 target law isForwarded
    Assert.True(forwarded > 100L, $"only {forwarded} of 2000 generated requests were forwarded")

[<Fact>]
let ``the backend path is the public path with the app prefix stripped`` () =
    let law t =
        match decide true t with
        | Forward plan ->
            let backendPath, backendQuery = Routing.splitTarget plan.BackendTarget
            let _, query = Routing.splitTarget t
            plan.App.Prefix + backendPath = plan.PublicPath && backendQuery = query
        | _ -> true
    let forwarded = checkWithCoverage 2000 target law isForwarded
    Assert.True(forwarded > 100L, $"only {forwarded} of 2000 generated requests were forwarded")

[<Property(MaxTest = 1000)>]
let ``plain HTTP redirects to https preserving path and query exactly`` () =
    Prop.forAll (Arb.fromGen target) (fun t ->
        match decide false t with
        | Redirect(302, location, _) -> location = "https://site.example:8443" + t
        | Reject _ -> true
        | _ -> false)

[<Property>]
let ``an app without its trailing slash redirects to it, query kept`` () =
    Prop.forAll (Arb.fromGen (Gen.zip (Gen.elements appNames) query)) (fun (app, q) ->
        decide true ("/" + app + q) = Redirect(302, "/" + app + "/" + q, "an app is reached with a trailing slash"))

[<Property>]
let ``matching is by whole first segment`` () =
    Prop.forAll (Arb.fromGen (Gen.elements [ "/app1x/"; "/app/"; "/APP1/"; "/app100/x"; "/app1%2F/"; "/" ])) (fun t ->
        match decide true t with
        | Reject(NotFound _) -> true
        | _ -> false)

[<Property>]
let ``no decision ever carries CR or LF`` () =
    Prop.forAll (Arb.fromGen (Gen.zip anyText anyText)) (fun (t, host) ->
        let facts = { request true ("/app1/" + t) with Host = host; ForwardedFor = Some t }
        let hasBreak (s: string) = s.IndexOfAny [| '\r'; '\n' |] >= 0
        match Routing.decide routingSnapshot facts with
        | Forward plan ->
            not (hasBreak plan.BackendTarget)
            && plan.RequestHeaders |> Array.forall (fun (n, v) -> not (hasBreak n || hasBreak v))
        | Redirect(_, location, _) -> not (hasBreak location)
        | Reject _ -> true)

[<Fact>]
let ``the seed's examples route as the seed does`` () =
    match decide true "/app1/something?x=1" with
    | Forward plan ->
        Assert.Equal("app1", plan.App.Name)
        Assert.Equal("/something?x=1", plan.BackendTarget)
        Assert.Contains(("X-Forwarded-Prefix", "/app1"), plan.RequestHeaders)
        Assert.Contains(("X-Forwarded-Proto", "https"), plan.RequestHeaders)
        Assert.Contains(("X-Forwarded-For", "192.0.2.1"), plan.RequestHeaders)
    | other -> failwithf "expected a forward, got %A" other
    Assert.Equal(Redirect(302, "/app2/?a=1", "an app is reached with a trailing slash"), decide true "/app2?a=1")
    Assert.Equal(Reject(NotFound "no app serves '/app3'"), decide true "/app3/")

[<Fact>]
let ``a bad Host header is refused before it can reach a Location`` () =
    let facts = { request false "/app1/" with Host = "evil.example/\"><" }
    Assert.Equal(400, (match Routing.decide routingSnapshot facts with Reject r -> r.Status | _ -> 0))

[<Fact>]
let ``an absolute-form target routes like its origin-form (RFC 9112 section 3.2.2)`` () =
    Assert.Equal(decide true "/app1/x?q=1", decide true "https://site.example/app1/x?q=1")
    Assert.Equal(decide true "/app2/x", decide true "http://site.example/app1/../app2/x")
    Assert.Equal(decide true "/?a", decide true "https://site.example?a")
    Assert.Equal(Reject(BadRequest "the request target must be a path starting with '/'"), decide true "*")
