module Lb.Rules.Tests.PersistenceTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules
open Lb.Rules.Tests.Generators

let private forAll (g: Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

let private cookieName (app: AppConfig) = app.Persistence.Cookie.Value

/// The app with other persistence settings, its server cookie values resolved again as `Config` does.
let private withPersistence (persistence: PersistenceConfig) (app: AppConfig) =
    { app with
        Persistence = persistence
        Servers =
            app.Servers
            |> Array.map (fun s ->
                { s with CookieValue = Cookies.cookieValueFor (persistence.Mode, app.Name, s.Name, string s.Address, None) }) }

/// What a user agent sends back for a `Set-Cookie` line: its first pair (RFC 6265 §5.2 step 1-2).
let private sentBack (setCookie: string) = render (Cookies.parse setCookie).[0]

/// A generated app with persistence on, a server index, an up mask with that server usable, and neighbours.
let private pinnedScenario =
    gen {
        let! config, appIndex = configWithPersistentApp
        let app = config.Apps[appIndex]
        let! server = Gen.choose (0, app.Servers.Length - 1)
        let! usable = Gen.arrayOfLength app.Servers.Length (Gen.elements [ true; false ])
        usable[server] <- true
        let! neighbours = hostileCookies 2
        let! headers = placedAmong (cookieName app) app.Servers[server].CookieValue neighbours
        return app, server, usable, headers
    }

// ---- Which server a cookie pins ----------------------------------------------------------------------

[<Property(MaxTest = 300)>]
let ``a valid cookie for a usable server is pinned to that server, first, in the middle or last among hostile cookies`` () =
    forAll pinnedScenario (fun (app, server, usable, headers) ->
        headers |> List.forall (fun h -> firstChoice app [| h |] (usable) = Pinned server))

[<Property(MaxTest = 300)>]
let ``a valid cookie split over several Cookie headers still pins`` () =
    forAll pinnedScenario (fun (app, server, usable, headers) ->
        let h = headers.Head
        let pairs = Cookies.parse h |> Array.map render
        let split = pairs |> Array.chunkBySize 2 |> Array.map (fun chunk -> String.Join("; ", chunk))
        firstChoice app split (usable) = Pinned server)

[<Property(MaxTest = 300)>]
let ``a cookie for a server of another app is never honoured in opaque mode`` () =
    let scenario =
        gen {
            let! config = lbConfig |> Gen.filter (fun c -> c.Apps.Length >= 2)
            let! name = persistenceCookieName
            let opaque = { Cookie = Some name; Mode = CookieValueMode.Opaque; MoveFirst = false }
            let apps = config.Apps |> Array.map (withPersistence opaque)
            let! a = Gen.choose (0, apps.Length - 1)
            let! b = Gen.choose (0, apps.Length - 1) |> Gen.filter ((<>) a)
            let! server = Gen.choose (0, apps[b].Servers.Length - 1)
            let! neighbours = hostileCookies 0
            let! headers = placedAmong name apps[b].Servers[server].CookieValue neighbours
            return apps[a], headers
        }
    forAll scenario (fun (app, headers) ->
        let everyUsable = Array.create app.Servers.Length true
        headers
        |> List.forall (fun h ->
            match Persistence.cookieOutcome (app, [| h |]), firstChoice app [| h |] everyUsable with
            | UnknownValue _, (Balanced(_, _, UnknownValue _) | NoServer(UnknownValue _)) -> true
            | _ -> false))

[<Property(MaxTest = 500)>]
let ``a forged value pins nobody unless it is a server's value`` () =
    forAll (Gen.zip configWithPersistentApp anyText) (fun ((config, i), forged) ->
        let app = config.Apps[i]
        let header = cookieName app + "=" + forged
        let everyUsable = Array.create app.Servers.Length true
        match firstChoice app [| header |] everyUsable with
        | Pinned s -> Cookies.tryFind (cookieName app, header) = Some app.Servers[s].CookieValue
        | _ -> true)

[<Property(MaxTest = 300)>]
let ``a cookie names its server whatever the server's state`` () =
    forAll pinnedScenario (fun (app, server, _, headers) ->
        headers |> List.forall (fun h -> Persistence.cookieOutcome (app, [| h |]) = NamesServer server))

[<Property>]
let ``no cookie means choose`` () =
    forAll (Gen.zip configWithPersistentApp (hostileCookies 0)) (fun ((config, i), neighbours) ->
        let app = config.Apps[i]
        let header = neighbours |> List.filter (fun p -> p.Name <> cookieName app) |> List.map render |> String.concat "; "
        Persistence.cookieOutcome (app, [| header |]) = NoCookie
        && Persistence.cookieOutcome (app, [||]) = NoCookie)

[<Property>]
let ``with persistence off nothing is pinned and the Cookie headers pass unchanged`` () =
    forAll (Gen.zip pinnedScenario persistenceConfig) (fun ((app, _, usable, headers), p) ->
        let off = { app with Persistence = { p with Cookie = None } }
        let sent = Array.ofList headers
        not (Persistence.isOn off)
        && Persistence.cookieOutcome (off, sent) = PersistenceOff
        && not (firstChoice off sent usable).IsPinned
        && Persistence.backendCookieHeaders (off, sent) = sent
        && Persistence.isOn app)

// ---- What the backend receives (indirect) ------------------------------------------------------------

[<Property(MaxTest = 300)>]
let ``the backend never sees the persistence cookie, and sees every other cookie in order`` () =
    forAll pinnedScenario (fun (app, _, _, headers) ->
        let app = { app with Persistence = { app.Persistence with MoveFirst = false } }
        let name = cookieName app
        headers
        |> List.forall (fun h ->
            let others = Cookies.parse h |> Array.filter (fun p -> p.Name <> name)
            let backend = Persistence.backendCookieHeaders (app, [| h |])
            Cookies.valuesIn (name, backend) = [||]
            && Cookies.parseHeaders backend = others
            && (backend.Length = 0) = (others.Length = 0)))

[<Property(MaxTest = 300)>]
let ``with move_first the persistence cookie reaches the backend first, others in order`` () =
    forAll pinnedScenario (fun (app, _, _, headers) ->
        let app = { app with Persistence = { app.Persistence with MoveFirst = true } }
        let name = cookieName app
        headers
        |> List.forall (fun h ->
            let pairs = Cookies.parse h
            let mine, others = pairs |> Array.partition (fun p -> p.Name = name)
            Cookies.parseHeaders (Persistence.backendCookieHeaders (app, [| h |])) = Array.append mine others))

[<Fact>]
let ``a Cookie header holding only the persistence cookie is dropped`` () =
    let app = routingConfig.Apps[0]
    Assert.Empty(Persistence.backendCookieHeaders (app, [| " SRVID=app1_1 " |]))
    Assert.Equal<string[]>([| "a=b"; "c=d" |], Persistence.backendCookieHeaders (app, [| "a=b; SRVID=app1_1"; "c=d" |]))

// ---- Set-Cookie ------------------------------------------------------------------------------------

[<Property(MaxTest = 300)>]
let ``a Set-Cookie read back by the client pins the same server, wherever the client puts it`` () =
    let scenario =
        gen {
            let! config, i = configWithPersistentApp
            let app = config.Apps[i]
            let! server = Gen.choose (0, app.Servers.Length - 1)
            let! secure = Gen.elements [ true; false ]
            let pair = (Cookies.parse (Persistence.setCookieFor (app, server, secure))).[0]
            let! neighbours = hostileCookies 0
            let! headers = placedAmong pair.Name pair.Value neighbours
            return app, server, headers
        }
    forAll scenario (fun (app, server, headers) ->
        headers |> List.forall (fun h -> firstChoice app [| h |] (Array.create app.Servers.Length true) = Pinned server))

[<Property(MaxTest = 200)>]
let ``two nodes loading the same config set and honour identical cookies`` () =
    forAll lbConfig (fun config ->
        let text = toToml config
        let load () =
            match Config.parseText (String(text.ToCharArray())) "/etc/lb" (fun _ -> true) with
            | Ok c -> Snapshot c
            | Error e -> failwithf "%A" e
        let nodeA, nodeB = load (), load ()
        Array.zip nodeA.Config.Apps nodeB.Config.Apps
        |> Array.forall (fun (a, b) ->
            not (Persistence.isOn a)
            || a.Servers
               |> Array.indexed
               |> Array.forall (fun (i, _) ->
                   let fromA = Persistence.setCookieFor (a, i, true)
                   fromA = Persistence.setCookieFor (b, i, true)
                   && firstChoice b [| sentBack fromA |] (Array.create b.Servers.Length true) = Pinned i)))

[<Property(MaxTest = 200)>]
let ``the Set-Cookie line is scoped to the app, HttpOnly, and Secure over https or for a __Secure- name`` () =
    forAll (Gen.zip configWithPersistentApp (Gen.elements [ true; false ])) (fun ((config, i), secure) ->
        let app = config.Apps[i]
        app.Servers
        |> Array.indexed
        |> Array.forall (fun (s, _) ->
            let line = Persistence.setCookieFor (app, s, secure)
            let expectSecure = secure || (cookieName app).StartsWith "__Secure-"
            line.Contains $"; Path={app.Prefix}/;"
            && line.Contains "; HttpOnly"
            && line.Contains "; Secure" = expectSecure
            && not (line.Contains '\r' || line.Contains '\n')))

[<Fact>]
let ``Set-Cookie examples`` () =
    let app = routingConfig.Apps[0]
    Assert.Equal("SRVID=app1_2; Path=/app1/; HttpOnly; Secure; SameSite=Lax", Persistence.setCookieFor (app, 1, true))
    Assert.Throws<ArgumentException>(fun () -> Persistence.setCookieFor (app, 2, true) |> ignore) |> ignore
    let off = { app with Persistence = { app.Persistence with Cookie = None } }
    Assert.Throws<ArgumentException>(fun () -> Persistence.setCookieFor (off, 0, true) |> ignore) |> ignore

[<Fact>]
let ``cookie outcome examples`` () =
    let app = routingConfig.Apps[0]
    Assert.Equal(NamesServer 1, Persistence.cookieOutcome (app, [| "a=\"x=y, z\"; b=é;SRVID=app1_2 ;d=SRVID=evil" |]))
    Assert.Equal(UnknownValue "app2_1", Persistence.cookieOutcome (app, [| "SRVID=app2_1" |]))
    Assert.Equal(NoCookie, Persistence.cookieOutcome (app, [| "srvid=app1_2; XSRVID=app1_2" |]))
    Assert.Equal(NamesServer 1, Persistence.cookieOutcome (app, [| "SRVID=forged; SRVID=app1_2; SRVID=app1_1" |]))

[<Fact>]
let ``a nocache response says private`` () =
    Assert.Equal("max-age=60, private", Persistence.cacheControlWithPrivate [| "public, max-age=60" |])
    Assert.Equal("private", Persistence.cacheControlWithPrivate [||])
