module Lb.Rules.Tests.CookieTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules
open Lb.Rules.Tests.Generators

let private forAll (g: Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

let private srv = persistenceName

let private pinned value = { Name = srv; Value = value }

let private noCrLf (s: string) = not (s.Contains '\r' || s.Contains '\n')

// ---- Finding: the HAProxy < 1.3.23 bug made impossible ----------------------------------------------

[<Property(MaxTest = 500)>]
let ``the persistence cookie is found first, in the middle and last among hostile cookies`` () =
    let scenario =
        gen {
            let! neighbours = hostileCookies 2
            let! value = persistenceValue
            let! headers =
                [ 0; neighbours.Length / 2; neighbours.Length ]
                |> List.map (fun at -> headerOf (List.insertAt at (pinned value) neighbours))
                |> Gen.sequenceToList
            return value, headers
        }

    forAll scenario (fun (value, headers) -> headers |> List.forall (fun h -> Cookies.tryFind (srv, h) = Some value))

[<Property(MaxTest = 500)>]
let ``every pair is parsed back in order, none lost or misattributed`` () =
    forAll withPersistenceCookies (fun (_, pairs, header) -> Cookies.parse header = Array.ofList pairs)

[<Property>]
let ``the first persistence cookie is the one found`` () =
    forAll withPersistenceCookies (fun (_, pairs, header) ->
        Cookies.tryFind (srv, header) = (pairs |> List.tryFind (fun p -> p.Name = srv) |> Option.map (fun p -> p.Value))
        && Cookies.valuesIn (srv, [| header |])
           = (pairs |> List.filter (fun p -> p.Name = srv) |> List.map (fun p -> p.Value) |> Array.ofList))

[<Property>]
let ``a header of hostile cookies alone holds no persistence cookie`` () =
    forAll (hostileCookies 0 |> Gen.bind headerOf) (fun header -> Cookies.tryFind (srv, header) = None)

[<Fact>]
let ``the seed's bug trigger is honoured: special characters before the persistence cookie`` () =
    let header = "a=\"x=y, z\"; b=é; c d=e f;flag;  SRVID=app1_2 ;d=SRVID=evil"
    Assert.Equal(Some "app1_2", Cookies.tryFind ("SRVID", header))

[<Fact>]
let ``names are compared exactly`` () =
    Assert.Equal(None, Cookies.tryFind ("SRVID", "srvid=a; SRVIDX=b; XSRVID=c; \"SRVID\"=d; x=SRVID=e"))

// ---- Removing (indirect) -------------------------------------------------------------------------

[<Property(MaxTest = 500)>]
let ``remove never leaves the persistence cookie and keeps all others in order`` () =
    forAll withPersistenceCookies (fun (neighbours, _, header) ->
        match Cookies.remove (srv, header) with
        | None -> neighbours.IsEmpty
        | Some rest -> Cookies.parse rest = Array.ofList neighbours && Cookies.tryFind (srv, rest) = None)

[<Property>]
let ``remove passes a header without the persistence cookie through unchanged`` () =
    forAll (hostileCookies 1 |> Gen.bind headerOf) (fun header -> Cookies.remove (srv, header) = Some header)

[<Fact>]
let ``remove signals that a header holding only the persistence cookie must be dropped`` () =
    Assert.Equal(None, Cookies.remove ("SRVID", " SRVID=app1_2 ; "))
    Assert.Equal(Some "a=b; c=d", Cookies.remove ("SRVID", "a=b;SRVID=app1_2;  c=d"))

// ---- Several Cookie headers (HTTP/2, RFC 9113 §8.2.3) ----------------------------------------------

[<Property>]
let ``cookies split over several headers are found and removed as in one`` () =
    let scenario =
        gen {
            let! neighbours, pairs, _ = withPersistenceCookies
            let! cuts = Gen.listOfLength pairs.Length (Gen.elements [ true; false; false ])
            let chunks =
                List.zip pairs cuts
                |> List.fold (fun acc (p, cut) -> match acc with
                                                  | current :: rest when not cut -> (p :: current) :: rest
                                                  | _ -> [ p ] :: acc) []
                |> List.rev
                |> List.map List.rev
            let! headers = chunks |> List.map headerOf |> Gen.sequenceToArray
            return neighbours, pairs, headers
        }

    forAll scenario (fun (neighbours, pairs, headers) ->
        let first = pairs |> List.find (fun p -> p.Name = srv)
        Cookies.tryFindInHeaders (srv, headers) = Some first.Value
        && Cookies.parseHeaders headers = Array.ofList pairs
        && Cookies.parseHeaders (Cookies.removeFromHeaders (srv, headers)) = Array.ofList neighbours
        && (Cookies.combine headers |> Option.map Cookies.parse) = Some(Array.ofList pairs))

// ---- moveFirst: the seed's Apache workaround -----------------------------------------------------

[<Theory>]
[<InlineData("a=b; c=d; e=f", "a=b; c=d; e=f")>]
[<InlineData("SRVID=app1_2; a=b; c=d", "SRVID=app1_2; a=b; c=d")>]
[<InlineData("a=b; SRVID=app1_2; c=d", "SRVID=app1_2; a=b; c=d")>]
[<InlineData("a=b; c=d; SRVID=app1_2", "SRVID=app1_2; a=b; c=d")>]
let ``moveFirst matches the seed's table`` (browserSends: string, haproxySees: string) =
    Assert.Equal(haproxySees, Cookies.moveFirst ("SRVID", browserSends))

[<Theory>]
[<InlineData("a=b;SRVID=app1_2;c=d", "SRVID=app1_2; a=b; c=d")>]
[<InlineData("a=b   ;   c=d ;SRVID=app1_2   ", "SRVID=app1_2; a=b; c=d")>]
[<InlineData("  SRVID=app1_2;a=b;;  c=d;", "SRVID=app1_2; a=b; c=d")>]
[<InlineData("a=b;    c=d", "a=b;    c=d")>]
let ``moveFirst takes any number of spaces between cookies`` (browserSends: string, haproxySees: string) =
    Assert.Equal(haproxySees, Cookies.moveFirst ("SRVID", browserSends))

[<Property(MaxTest = 500)>]
let ``moveFirst puts the persistence cookies first and is a permutation`` () =
    forAll withPersistenceCookies (fun (neighbours, pairs, header) ->
        let moved = Cookies.parse (Cookies.moveFirst (srv, header))
        let persistence = pairs |> List.filter (fun p -> p.Name = srv)
        moved = Array.ofList (persistence @ neighbours)
        && Array.sort moved = Array.sort (Array.ofList pairs)
        && Cookies.tryFind (srv, Cookies.moveFirst (srv, header)) = Cookies.tryFind (srv, header))

[<Property>]
let ``moveFirst leaves a header without the persistence cookie unchanged`` () =
    forAll (hostileCookies 0 |> Gen.bind headerOf) (fun header -> Cookies.moveFirst (srv, header) = header)

// ---- Value codec -----------------------------------------------------------------------------------

let private valuesFor mode (app: string, servers: (string * string)[]) =
    servers |> Array.map (fun (name, address) -> Cookies.cookieValueFor (mode, app, name, address, None))

/// A fresh copy of a string, as another process would hold it: nothing may depend on identity.
let private copy (s: string) = String(s.ToCharArray())

[<Property>]
let ``two nodes computing from the same config give identical cookie values`` () =
    forAll (Gen.zip appServers (Gen.elements [ CookieValueMode.Named; CookieValueMode.Opaque ])) (fun ((app, servers), mode) ->
        let nodeA = valuesFor mode (app, servers)
        let nodeB = valuesFor mode (copy app, servers |> Array.map (fun (n, a) -> copy n, copy a))
        nodeA = nodeB)

/// Pinned from `printf 'app1\napp1_1\n127.0.0.1:9101' | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | cut -c1-16`.
[<Fact>]
let ``opaque values are pinned: changing the derivation would unpin every client on upgrade`` () =
    Assert.Equal("NuZ_b0DEPT8wKHdm", Cookies.opaqueValue ("app1", "app1_1", "127.0.0.1:9101"))
    Assert.Equal("xcCtGvHssn6hvZgk", Cookies.opaqueValue ("app1", "app1_2", "127.0.0.1:9102"))

/// The server a Cookie header naming `values` resolves to in an app whose servers have `serverValues`.
let private resolve (serverValues: string array) (values: string array) =
    let app =
        { Generators.routingConfig.Apps[0] with
            Servers = serverValues |> Array.mapi (fun i v -> { Generators.routingConfig.Apps[0].Servers[0] with Name = $"s{i}"; CookieValue = v }) }
    let header = String.Join("; ", values |> Array.map (fun v -> "SRVID=" + v))
    match Persistence.cookieOutcome (app, [| header |]) with
    | NamesServer i -> Some i
    | _ -> None

[<Property>]
let ``every server's cookie value resolves to that server`` () =
    forAll (Gen.zip appServers (Gen.elements [ CookieValueMode.Named; CookieValueMode.Opaque ])) (fun ((app, servers), mode) ->
        let values = valuesFor mode (app, servers)
        List.isEmpty (Cookies.validateServerValues values)
        && values |> Array.mapi (fun i v -> resolve values [| v |] = Some i) |> Array.forall id)

[<Property(MaxTest = 500)>]
let ``forged values resolve to no server`` () =
    forAll (Gen.zip appServers anyText) (fun ((app, servers), forged) ->
        let values = valuesFor CookieValueMode.Opaque (app, servers)
        // What the parser reads of the forged text: none of it may name a server unless it is a server's value.
        let read = Cookies.valuesIn ("SRVID", [| "SRVID=" + forged |])
        read |> Array.exists (fun v -> Array.contains v values) || resolve values [| forged |] = None)

[<Property>]
let ``another app's opaque values resolve to no server`` () =
    forAll appServers (fun (app, servers) ->
        let mine = valuesFor CookieValueMode.Opaque (app, servers)
        let theirs = valuesFor CookieValueMode.Opaque (app + "-other", servers)
        resolve mine theirs = None)

[<Property>]
let ``an opaque value is a valid cookie value that does not show the server name`` () =
    forAll appServers (fun (app, servers) ->
        servers
        |> Array.forall (fun (name, address) ->
            let v = Cookies.opaqueValue (app, name, address)
            Cookies.isValidValue v && v.Length = Cookies.OpaqueLength && not (v.Contains name) && not (v.Contains app)))

[<Fact>]
let ``a named value is the configured cookie, else the server name`` () =
    Assert.Equal("s1", Cookies.cookieValueFor (CookieValueMode.Named, "app1", "app1_1", "10.0.0.1:80", Some "s1"))
    Assert.Equal("app1_1", Cookies.cookieValueFor (CookieValueMode.Named, "app1", "app1_1", "10.0.0.1:80", None))

[<Fact>]
let ``validateServerValues lists every bad and duplicate value`` () =
    let errors = Cookies.validateServerValues [| "s1"; "a b"; "s1"; ""; "x;y" |]
    Assert.Equal(4, errors.Length)

[<Fact>]
let ``the app's own cookie wins over a stale wider-path one`` () =
    let values = [| "s1"; "s2" |]
    Assert.Equal(Some 1, resolve values [| "forged"; "s2"; "s1" |])

// ---- Set-Cookie ------------------------------------------------------------------------------------

[<Fact>]
let ``the Set-Cookie line is scoped to the app and HttpOnly, Secure over https`` () =
    Assert.Equal(Ok "SRVID=app1_2; Path=/app1/; HttpOnly; Secure; SameSite=Lax", Cookies.setCookie ("SRVID", "app1_2", "/app1/", true))
    Assert.Equal(Ok "SRVID=app1_2; Path=/app1/; HttpOnly; SameSite=Lax", Cookies.setCookie ("SRVID", "app1_2", "/app1/", false))

[<Fact>]
let ``setCookie lists every problem`` () =
    match Cookies.setCookie ("SRV ID", "a\r\nSet-Cookie: x=1", "app1", false) with
    | Ok line -> failwithf "accepted %A" line
    | Error errors -> Assert.Equal(3, errors.Length)

[<Fact>]
let ``cookie prefixes keep their RFC 6265bis promises`` () =
    Assert.True(Result.isError (Cookies.setCookie ("__Secure-SRVID", "s1", "/app1/", false)))
    Assert.True(Result.isOk (Cookies.setCookie ("__Secure-SRVID", "s1", "/app1/", true)))
    Assert.True(Result.isError (Cookies.setCookie ("__Host-SRVID", "s1", "/app1/", true)))
    Assert.True(Result.isOk (Cookies.setCookie ("__Host-SRVID", "s1", "/", true)))

[<Property>]
let ``setCookie accepts every token name and valid value, and the pair reads back`` () =
    forAll (Gen.zip3 token persistenceValue (Gen.elements [ true; false ])) (fun (name, value, secure) ->
        match Cookies.setCookie (name, value, "/app1/", secure) with
        | Ok line -> Cookies.tryFind (name, line) = Some value
        | Error _ -> false)

[<Property(MaxTest = 500)>]
let ``setCookie never emits CR, LF or an injected attribute`` () =
    let path = Gen.oneof [ anyText; Gen.constant "/app1/"; anyText |> Gen.map (fun s -> "/" + s) ]
    forAll (Gen.zip3 (Gen.oneof [ anyText; token ]) (Gen.oneof [ anyText; persistenceValue ]) path) (fun (name, value, path) ->
        match Cookies.setCookie (name, value, path, true) with
        | Ok line ->
            noCrLf line
            && line = name + "=" + value + "; Path=" + path + "; HttpOnly; Secure; SameSite=Lax"
            && Cookies.isValidName name
            && Cookies.isValidValue value
            && not (path.Contains ';')
        | Error errors -> not errors.IsEmpty)

// ---- Cache-Control (nocache) -----------------------------------------------------------------------

let private directiveName (d: string) =
    (match d.IndexOf '=' with
     | -1 -> d
     | i -> d.Substring(0, i)).ToLowerInvariant()

[<Property(MaxTest = 300)>]
let ``withPrivate says private exactly once, drops public and keeps other directives in order`` () =
    forAll cacheControlLines (fun (directives, lines) ->
        let others = directives |> List.filter (fun d -> directiveName d <> "public")
        let expected =
            match others |> List.tryFindIndex (fun d -> directiveName d = "private") with
            | Some i ->
                (others |> List.take i |> List.filter (fun d -> directiveName d <> "private"))
                @ [ "private" ]
                @ (others |> List.skip i |> List.filter (fun d -> directiveName d <> "private"))
            | None -> others @ [ "private" ]
        Cookies.withPrivate lines = String.concat ", " expected)

[<Property>]
let ``withPrivate is idempotent`` () =
    forAll cacheControlLines (fun (_, lines) ->
        let once = Cookies.withPrivate lines
        Cookies.withPrivate [| once |] = once)

[<Fact>]
let ``withPrivate examples`` () =
    Assert.Equal("private", Cookies.withPrivate [||])
    Assert.Equal("max-age=600, private", Cookies.withPrivate [| "public, max-age=600" |])
    Assert.Equal("no-cache=\"set-cookie, x\", private", Cookies.withPrivate [| "no-cache=\"set-cookie, x\", Public" |])
    Assert.Equal("max-age=0, private", Cookies.withPrivate [| "max-age=0"; "private=\"set-cookie\"" |])
    Assert.Equal("max-age=5, private", Cookies.withPrivate [| "x-evil\r\nSet-Cookie: a=b, max-age=5" |])

// ---- No output ever holds CR or LF ----------------------------------------------------------------

[<Property(MaxTest = 1000)>]
let ``no output ever contains CR or LF`` () =
    let scenario = Gen.zip3 (Gen.oneof [ anyText; token ]) anyText (Gen.arrayOf anyText)
    forAll scenario (fun (name, header, headers) ->
        let outputs =
            [ yield! Option.toList (Cookies.remove (name, header))
              yield Cookies.moveFirst (name, header)
              yield! Cookies.removeFromHeaders (name, headers)
              yield! Option.toList (Cookies.combine headers)
              yield Cookies.withPrivate headers
              yield! (Cookies.setCookie (name, header, "/" + header, true) |> Result.toList) ]
        outputs |> List.forall noCrLf)
