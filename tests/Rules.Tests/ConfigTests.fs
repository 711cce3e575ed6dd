module Lb.Rules.Tests.ConfigTests

open System
open Xunit
open FsCheck.Xunit
open Lb.Rules

let private allFilesExist (_: string) = true

let private parse text = Config.parseText text "/etc/lb" allFilesExist

let private valid =
    """
[node]
name = "lb1"
[listen]
http  = "127.0.0.1:18080"
https = "127.0.0.1:18443"
[tls]
cert = "lb.crt"
key = "lb.key"
[defaults]
retries = 3
redispatch = true
timeout_connect = "5s"
timeout_client  = "50s"
timeout_server  = "50s"
[apps.app1]
servers = [ { name = "app1_1", address = "127.0.0.1:9101" },
            { name = "app1_2", address = "127.0.0.1:9102" } ]
"""

[<Fact>]
let ``the issue's config loads with every value typed`` () =
    match parse valid with
    | Ok config ->
        Assert.Equal("lb1", config.Node.Name)
        Assert.Equal(Some { Host = "127.0.0.1"; Port = 18443 }, config.Listen.Https)
        Assert.Equal("/etc/lb/lb.crt", config.Tls.Value.Cert)
        Assert.Equal(TimeSpan.FromSeconds 5.0, config.Defaults.TimeoutConnect)
        Assert.Equal(2, config.Apps[0].Servers.Length)
        Assert.Equal("/app1", config.Apps[0].Prefix)
    | Error errors -> failwithf "%A" errors

[<Fact>]
let ``three mistakes give three located errors with hints`` () =
    let text =
        valid
            .Replace("retries = 3", "retris = 3")
            .Replace("timeout_client  = \"50s\"", "timeout_client  = \"50 seconds\"")
            .Replace("{ name = \"app1_2\", address = \"127.0.0.1:9102\" }", "{ name = \"app1_2\" }")
    match parse text with
    | Ok _ -> failwith "expected errors"
    | Error errors ->
        Assert.Equal(3, errors.Length)
        let byKeyword = errors |> List.map (fun e -> e.Keyword, e.Line) |> dict
        Assert.Equal(11, byKeyword["defaults.retris"])
        Assert.Equal(14, byKeyword["defaults.timeout_client"])
        Assert.True(byKeyword.ContainsKey "apps.app1.servers[1].address")
        Assert.Contains("did you mean 'retries'?", errors |> List.map (fun e -> e.Hint))
        Assert.All(errors, fun e -> Assert.True(e.Column >= 1))

[<Fact>]
let ``a syntax error is located`` () =
    match parse "[node]\nname = \n" with
    | Error [ e ] ->
        Assert.Equal("syntax", e.Keyword)
        Assert.Equal(2, e.Line)
    | other -> failwithf "%A" other

[<Fact>]
let ``an https listener without tls, a missing file, a bad app name and duplicate servers are all reported`` () =
    let text =
        """
[listen]
https = "127.0.0.1:8443"
[apps."bad/name"]
servers = [ { name = "s", address = "127.0.0.1:1" }, { name = "s", address = "127.0.0.1:2" } ]
"""
    match Config.parseText text "/etc/lb" (fun _ -> false) with
    | Error errors ->
        let keywords = errors |> List.map (fun e -> e.Keyword)
        Assert.Contains("tls", keywords)
        Assert.Contains("apps.bad/name", keywords)
        Assert.Contains("apps.bad/name.servers", keywords)
    | Ok _ -> failwith "expected errors"

[<Fact>]
let ``pem files are checked relative to the config file`` () =
    let seen = Collections.Generic.List<string>()
    let exists path = seen.Add path; false
    match Config.parseText valid "/etc/lb" exists with
    | Error errors ->
        Assert.Contains("/etc/lb/lb.crt", seen)
        Assert.Equal(2, errors.Length)
    | Ok _ -> failwith "expected missing files"

[<Property>]
let ``every duration written with a unit reads back as that many units`` (n: uint16) =
    let n = float n
    ConfigReading.parseDuration $"{n}ms" = Some(TimeSpan.FromMilliseconds n)
    && ConfigReading.parseDuration $"{n}s" = Some(TimeSpan.FromSeconds n)
    && ConfigReading.parseDuration $"{n}m" = Some(TimeSpan.FromMinutes n)

[<Fact>]
let ``a bare number is not a duration`` () =
    Assert.Equal(None, ConfigReading.parseDuration "5000")
    Assert.Equal(None, ConfigReading.parseDuration "s")
    Assert.Equal(None, ConfigReading.parseDuration "-1s")

[<Fact>]
let ``endpoints take IPv4, bracketed IPv6, names and any`` () =
    Assert.Equal(Ok { Host = "::1"; Port = 443 }, ConfigReading.parseEndpoint "[::1]:443")
    Assert.Equal(Ok { Host = "*"; Port = 80 }, ConfigReading.parseEndpoint "*:80")
    Assert.True(Result.isError (ConfigReading.parseEndpoint "::1:443"))
    Assert.True(Result.isError (ConfigReading.parseEndpoint "127.0.0.1:99999"))
    Assert.True(Result.isError (ConfigReading.parseEndpoint "127.0.0.1"))
