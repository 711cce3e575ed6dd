module Lb.Rules.Tests.HeaderRewriteTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules
open Lb.Rules.Tests.Generators

let private context =
    { Prefix = "/app1"
      PublicScheme = "https"
      PublicHost = "site.example"
      ServerAuthorities = [| "10.0.0.11:8080"; "10.0.0.12:8080" |] }

let private hasBreak (s: string) = s.IndexOfAny [| '\r'; '\n'; '\000' |] >= 0

[<Property>]
let ``no Location rewrite ever emits CR, LF or NUL`` () =
    Prop.forAll (Arb.fromGen anyText) (fun value -> not (hasBreak (HeaderRewrite.rewriteLocation context value)))

[<Property>]
let ``no Set-Cookie rewrite ever emits CR, LF or NUL`` () =
    Prop.forAll (Arb.fromGen anyText) (fun value -> not (hasBreak (HeaderRewrite.rewriteSetCookie "/app1" value)))

[<Property>]
let ``forwarded headers never carry CR, LF or NUL`` () =
    Prop.forAll (Arb.fromGen (Gen.zip anyText anyText)) (fun (xff, host) ->
        HeaderRewrite.forwardedHeaders (Some xff) "192.0.2.1" true host "/app1"
        |> Array.forall (fun (_, v) -> not (hasBreak v)))

[<Property>]
let ``a Location on the backend server gets the public scheme, host and prefix`` () =
    Prop.forAll (Arb.fromGen (Gen.zip pathUnder (Gen.elements [ "10.0.0.11:8080"; "10.0.0.12:8080"; "site.example" ]))) (fun ((_, path), authority) ->
        HeaderRewrite.rewriteLocation context ("http://" + authority + path) = "https://site.example/app1" + path)

[<Property>]
let ``strip then re-add is identity through the Location rewrite`` () =
    Prop.forAll (Arb.fromGen pathUnder) (fun (app, path) ->
        let prefix = "/" + app
        // What the backend received (Routing's BackendTarget), sent back as a Location, becomes the public path again.
        let stripped =
            match Routing.decide keepingSnapshot (request true path) with
            | Forward plan -> plan.BackendTarget
            | other -> failwithf "not forwarded: %A" other
        HeaderRewrite.rewriteLocation { context with Prefix = prefix } stripped = path)

[<Property>]
let ``a Location on another host is untouched`` () =
    Prop.forAll (Arb.fromGen pathUnder) (fun (_, path) ->
        let other = "https://elsewhere.example" + path
        HeaderRewrite.rewriteLocation context other = other)

[<Property>]
let ``a Set-Cookie path always ends up under the prefix`` () =
    Prop.forAll (Arb.fromGen (Gen.zip pathUnder (Gen.elements [ "Path"; "path"; "PATH"; " path " ]))) (fun ((_, path), attribute) ->
        let rewritten = HeaderRewrite.rewriteSetCookie "/app1" $"sid=abc; {attribute}={path}; HttpOnly"
        rewritten = $"sid=abc; {attribute}=/app1{path}; HttpOnly")

[<Fact>]
let ``the issue's examples`` () =
    Assert.Equal("https://site.example/app1/x", HeaderRewrite.rewriteLocation context "http://10.0.0.11:8080/x")
    Assert.Equal("/app1/x", HeaderRewrite.rewriteLocation context "/x")
    Assert.Equal("https://site.example/app1/", HeaderRewrite.rewriteLocation context "http://10.0.0.12:8080")
    Assert.Equal("https://site.example/app1/?a=1", HeaderRewrite.rewriteLocation context "http://site.example?a=1")
    Assert.Equal("relative/x", HeaderRewrite.rewriteLocation context "relative/x")
    Assert.Equal("a=b; Path=/app1/", HeaderRewrite.rewriteSetCookie "/app1" "a=b; Path=/")
    Assert.Equal("a=b", HeaderRewrite.rewriteSetCookie "/app1" "a=b")
    Assert.Equal("path=/x; Secure", HeaderRewrite.rewriteSetCookie "/app1" "path=/x; Secure")
    Assert.Equal("198.51.100.1, 192.0.2.1", HeaderRewrite.forwardedFor (Some "198.51.100.1") "192.0.2.1")

[<Fact>]
let ``default ports name the same server`` () =
    let ctx = { context with ServerAuthorities = [| "10.0.0.11:80" |] }
    Assert.Equal("https://site.example/app1/x", HeaderRewrite.rewriteLocation ctx "http://10.0.0.11/x")
