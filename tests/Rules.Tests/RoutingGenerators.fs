/// Generators for requests, paths and header values (routing and rewrite properties).
module Lb.Rules.Tests.RoutingGenerators

open System
open FsCheck
open FsCheck.FSharp
open Lb.Rules

/// App names that are prefixes, extensions or case variants of one another: `/app10/` must not be app1.
let appNames = [ "app1"; "app2"; "app10"; "App1"; "a.b"; "x-y_z~" ]

/// Path segments chosen to attack routing: dot-segments plain and encoded, encoded slashes and
/// backslashes, other apps' names, empty segments, non-ASCII and reserved characters.
let hostileSegment: Gen<string> =
    Gen.frequency
        [ 6, Gen.elements [ ".."; "."; "%2e%2e"; "%2E%2e"; ".%2e"; "%2e"; "%2F"; "..%2F"; "%2f..%2f"; "%5C"; "\\.."; ""; "%00x"; "%zz"; "%" ]
          6, Gen.elements (appNames @ [ "app1x"; "app"; "APP1"; "app1%2F..%2Fapp2" ])
          4, Gen.elements [ "x"; "rest"; "a b"; "é"; "日本"; "%41"; "%7e"; "~"; "index.html"; ";p=1"; "@"; ":" ] ]

/// A request path of hostile segments, sometimes with a trailing slash.
let hostilePath: Gen<string> =
    gen {
        let! segments = Gen.listOfLength 4 hostileSegment |> Gen.resize 6
        let! n = Gen.choose (0, 5)
        let! trailing = Gen.elements [ ""; "/" ]
        return "/" + String.Join("/", List.truncate n segments) + trailing
    }

let query: Gen<string> = Gen.elements [ ""; "?"; "?q=1"; "?a=b&c=%2F..%2F"; "?x=/app2/y"; "?%0d%0a=1" ]

/// Any string at all, CR, LF and NUL especially likely.
let anyText: Gen<string> =
    Gen.frequency
        [ 3, ArbMap.defaults |> ArbMap.generate<string> |> Gen.map string
          2, Gen.elements [ "\r\n"; "\n"; "\r"; "\000"; "a\r\nSet-Cookie: evil=1"; "/x\r\nLocation: http://evil/" ] |> Gen.listOf |> Gen.map String.Concat ]

let server name port : ServerConfig = { Name = name; Address = { Host = "127.0.0.1"; Port = port }; Weight = 1 }

/// A config with every app of `appNames`, each with its own servers on distinct ports.
let config: LbConfig =
    { Node = { Name = "lb-test" }
      Listen =
        { Http = Some { Host = "127.0.0.1"; Port = 8080 }
          Https = Some { Host = "127.0.0.1"; Port = 8443 }
          PlainHttp = PlainHttpMode.RedirectToHttps
          RedirectStatus = 302 }
      Tls = Some { Cert = "/c.pem"; Key = "/k.pem"; Chain = None }
      Defaults = Config.defaultDefaults
      Apps =
        appNames
        |> List.mapi (fun i name -> { Name = name; Servers = [| server $"{name}_1" (9000 + 10 * i); server $"{name}_2" (9001 + 10 * i) |] })
        |> Array.ofList }

let snapshot = Snapshot config

let request isHttps target : RequestFacts =
    { IsHttps = isHttps; Host = "site.example"; Method = "GET"; RawTarget = target; ClientAddress = "192.0.2.1"; ForwardedFor = None }

/// A valid path under an app: what a client of app `name` sends, already in normal form.
let pathUnder: Gen<string * string> =
    gen {
        let! app = Gen.elements appNames
        let! segments = Gen.listOf (Gen.elements [ "x"; "rest"; "a%2Fb"; "%C3%A9"; "index.html"; "" ]) |> Gen.resize 4
        let rest = "/" + String.Join("/", segments |> List.filter ((<>) ""))
        return app, "/" + app + rest
    }

type Arbitraries =
    static member HostilePath() = Arb.fromGen hostilePath
