module Lb.Rules.Tests.RenderTests

open System
open Xunit
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules

let private allFilesExist (_: string) = true

let private forAll (g: FsCheck.Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

let private load text =
    match Config.parseText text "/etc/lb" allFilesExist with
    | Ok config -> config
    | Error errors -> failwithf "%s\n%s" text (String.Join("\n", errors |> List.map string))

let private repoRoot = Reliability.repositoryRoot ()

let private sample name =
    let file = IO.Path.Combine(repoRoot, "samples", name)
    Config.parseText (IO.File.ReadAllText file) (IO.Path.GetDirectoryName file |> string) allFilesExist

[<Property(MaxTest = 300)>]
let ``every generated valid config renders to TOML that loads back equal`` () =
    forAll Generators.lbConfig (fun config -> load (TomlRender.render config) = config)

[<Property(MaxTest = 100)>]
let ``rendering the loaded rendering gives the same text`` () =
    forAll Generators.lbConfig (fun config ->
        let text = TomlRender.render config
        TomlRender.render (load text) = text)

[<Property(MaxTest = 200)>]
let ``deleting every line marked default loads the same config`` () =
    forAll Generators.lbConfig (fun config ->
        let text = TomlRender.render config
        let trimmed =
            text.Split '\n' |> Array.filter (fun line -> not (line.EndsWith "  # default")) |> String.concat "\n"
        load trimmed = config)

/// Any string TOML can hold: no lone surrogate (TOML text is UTF-8, RFC 3629 §3 excludes them).
let private tomlText =
    Generators.anyText
    |> Gen.filter (fun s ->
        let rec ok i =
            i >= s.Length
            || (Char.IsHighSurrogate s[i] && i + 1 < s.Length && Char.IsLowSurrogate s[i + 1] && ok (i + 2))
            || (not (Char.IsSurrogate s[i]) && ok (i + 1))
        ok 0)

[<Property(MaxTest = 500)>]
let ``any text is quoted so that TOML reads it back unchanged`` () =
    forAll tomlText (fun text ->
        let config = load $"[node]\nname = {TomlRender.quote text}\n[listen]\nhttp = \"127.0.0.1:8080\"\n[apps.a]\nservers = [ {{ name = \"s\", address = \"10.0.0.1:80\" }} ]\n"
        config.Node.Name = text)

[<Fact>]
let ``keys that are not bare are quoted`` () =
    Assert.Equal("app1", TomlRender.key "app1")
    Assert.Equal("503", TomlRender.key "503")
    Assert.Equal("\"a.b\"", TomlRender.key "a.b")
    Assert.Equal("\"x-y_z~\"", TomlRender.key "x-y_z~")
    Assert.Equal("\"\"", TomlRender.key "")

[<Fact>]
let ``the three-apps sample shows every default filled in and marked`` () =
    match sample "three-apps.toml" with
    | Error errors -> failwithf "%A" errors
    | Ok config ->
        let text = TomlRender.render config
        let lines = text.Split '\n'
        for expected in
            [ "retries = 3  # default"
              "maxconn = 2000  # default"
              "timeout_queue = \"5s\"  # default"
              "cookie = \"SRVID\"  # default"
              "interval = \"10s\"  # default"
              "user_agent = \"lb-healthcheck/1.0\"  # default"
              "access = \"stdout\"  # default"
              "balance = \"roundrobin\"  # default"
              "name = \"lb1\""
              "https = \"127.0.0.1:18443\""
              "  { name = \"app1_1\", address = \"127.0.0.1:9101\", weight = 1 }," ] do
            Assert.Contains(expected, lines)
        let samplesDir = IO.Path.Combine(repoRoot, "samples")
        let cert = IO.Path.Combine(samplesDir, "tls", "lb.crt")
        Assert.Contains($"cert = \"{cert}\"", lines)
        Assert.Equal(config, load text)

[<Fact>]
let ``an app writes only the keys where it differs from the global tables`` () =
    let config =
        load
            """
[listen]
http = "127.0.0.1:8080"
[health]
path = "/ping"
[apps.a]
servers = [ { name = "s", address = "10.0.0.1:80" } ]
[apps.b]
servers = [ { name = "s", address = "10.0.0.2:80" } ]
[apps.c]
health = { interval = "1s" }
persistence = { cookie = "" }
servers = [ { name = "s", address = "10.0.0.3:80" } ]
"""
    let lines = (TomlRender.render config).Split '\n'
    Assert.Contains("path = \"/ping\"", lines)
    Assert.Contains("health = { interval = \"1s\", timeout = \"1s\" }  # over [health]", lines)
    Assert.Contains("persistence = { cookie = \"\" }  # over [persistence]", lines)
    Assert.Equal(1, lines |> Array.filter (fun l -> l.StartsWith "health = ") |> Array.length)

[<Fact>]
let ``a config with stats, vrrp and every optional table renders each of them`` () =
    let config = Gen.sample 1 Generators.lbConfig |> Array.head
    let config =
        { config with
            Stats = Some(Gen.sample 1 Generators.statsConfig |> Array.head)
            Vrrp = Some(Gen.sample 1 Generators.vrrpConfig |> Array.head) }
    let text = TomlRender.render config
    for header in [ "[node]"; "[listen]"; "[defaults]"; "[persistence]"; "[health]"; "[stats]"; "[log]"; "[vrrp]"; "[cache]" ] do
        Assert.Contains(header, text.Split '\n')
    Assert.Contains("password_hash = \"pbkdf2-sha256$", text)
    Assert.Equal(config, load text)

[<Fact>]
let ``lb config show is parsed as a command`` () =
    Assert.Equal(ConfigShowCommand "site.toml", Cli.parse [| "config"; "show"; "-c"; "site.toml" |])
    match Cli.parse [| "config"; "show" |] with
    | UsageCommand(_, code) -> Assert.Equal(2, code)
    | other -> failwithf "%A" other
