/// `Keywords` is where a keyword's name and default are written once; docs/config.md must say the same.
module Lb.Rules.Tests.KeywordsTests

open System
open Xunit
open Lb.Rules

let private docs = IO.File.ReadAllLines(IO.Path.Combine(Reliability.repositoryRoot (), "docs", "config.md"))

/// Each table of `Keywords` with the heading of its section in docs/config.md.
let private tables =
    [ "## [node]", Keywords.Node.all
      "## [listen]", Keywords.Listen.all
      "## [tls]", Keywords.Tls.all
      "## [defaults]", Keywords.Defaults.all
      "## [persistence]", Keywords.Persistence.all
      "## [health]", Keywords.Health.all
      "## [apps.NAME]", Keywords.App.all
      "### servers = [ { ... } ]", Keywords.Server.all
      "## [stats]", Keywords.Stats.all
      "## [log]", Keywords.Log.all
      "## [cache]", Keywords.Cache.all
      "## [vrrp]", Keywords.Vrrp.all
      "### [[vrrp.track_script]]", Keywords.TrackScript.all ]

/// The rows under a heading, up to the next heading: keyword → its default cell.
let private rows (heading: string) =
    docs
    |> Array.skipWhile (fun l -> l <> heading)
    |> Array.skip 1
    |> Array.takeWhile (fun l -> not (l.StartsWith "#"))
    |> Array.filter (fun l -> l.StartsWith "| `")
    |> Array.map (fun l ->
        let cells = l.Split(" | ")
        cells[0].Substring(2).Trim('`'), cells[1])
    |> Map.ofArray

/// The first `code` of a default cell: `"5s"` in "`"5s"` (1s to 1h)".
let private firstCode (cell: string) =
    match cell.IndexOf '`' with
    | -1 -> None
    | i ->
        let j = cell.IndexOf('`', i + 1)
        if j > i then Some(cell.Substring(i + 1, j - i - 1)) else None

/// Two written values say the same: equal text, or durations of the same length (`"0s"` and `"0ms"`).
let private sameValue (documented: string) (written: string) =
    let duration (s: string) =
        if s.StartsWith "\"" && s.EndsWith "\"" then ConfigReading.parseDuration (s.Trim '"') else None
    documented = written
    || (match duration documented, duration written with
        | Some a, Some b -> a = b
        | _ -> false)

[<Fact>]
let ``every keyword of the table has its row in docs/config.md under its section`` () =
    let missing =
        [ for heading, keywords in tables do
              let documented = rows heading
              for k in keywords do
                  if not (documented.ContainsKey k.Name) then yield $"{heading}: {k.Name}" ]
    Assert.Empty missing

[<Fact>]
let ``every default docs/config.md names is the one the table holds`` () =
    let wrong =
        [ for heading, keywords in tables do
              let documented = rows heading
              for k in keywords do
                  match k.Default, documented.TryFind k.Name |> Option.bind firstCode with
                  | Some value, Some text when not (sameValue text (TomlRender.value value)) ->
                      yield $"{heading} {k.Name}: docs say {text}, Keywords say {TomlRender.value value}"
                  | Some value, None -> yield $"{heading} {k.Name}: docs give no default, Keywords say {TomlRender.value value}"
                  | _ -> () ]
    Assert.Empty wrong

/// A minimal valid config, to which each case adds one table.
let private minimal =
    "[listen]\nhttps = \"127.0.0.1:8443\"\n[tls]\ncert = \"c\"\nkey = \"k\"\n[apps.a]\nservers = [ { name = \"s\", address = \"10.0.0.1:80\" } ]\n"

/// Every keyword of a table written once, each with a value of the wrong kind or none that is valid: the loader
/// may refuse the values, never the names.
let private unknownKeys (text: string) =
    match Config.parseText text "/etc/lb" (fun _ -> true) with
    | Ok _ -> []
    | Error errors -> errors |> List.filter (fun e -> e.Message = "unknown key") |> List.map (fun e -> e.Keyword)

let private assigned (keywords: KeywordInfo list) =
    keywords |> List.map (fun k -> $"{k.Name} = 1\n") |> String.concat ""

[<Fact>]
let ``the loader accepts every keyword of the table by its name`` () =
    let sections =
        [ for path, keywords in
              [ "node", Keywords.Node.all
                "defaults", Keywords.Defaults.all
                "persistence", Keywords.Persistence.all
                "health", Keywords.Health.all
                "stats", Keywords.Stats.all
                "log", Keywords.Log.all
                "cache", Keywords.Cache.all
                "vrrp", Keywords.Vrrp.all
                "apps.b", Keywords.App.all ] ->
              $"[{path}]\n" + assigned keywords ]
    for section in sections do
        Assert.Empty(unknownKeys (minimal + section))
    // [listen] is in the minimal config already; the servers and track scripts are tables in arrays.
    Assert.Empty(unknownKeys (minimal.Replace("[listen]\n", "[listen]\nhttp = \"127.0.0.1:8080\"\nplain_http = \"proxy\"\nredirect_status = 301\n")))
    let server = Keywords.Server.all |> List.map (fun k -> $"{k.Name} = 1") |> String.concat ", "
    Assert.Empty(unknownKeys (minimal + $"[apps.c]\nservers = [ {{ {server} }} ]\n"))
    Assert.Empty(unknownKeys (minimal + "[vrrp]\ninterface = \"eth0\"\n[[vrrp.track_script]]\n" + assigned Keywords.TrackScript.all))

[<Fact>]
let ``a key that is not in the table is refused with the table's nearest name`` () =
    match Config.parseText (minimal + "[defaults]\nretriez = 1\n") "/etc/lb" (fun _ -> true) with
    | Error [ e ] ->
        Assert.Equal("defaults.retriez", e.Keyword)
        Assert.Equal($"did you mean '{Keywords.Defaults.retries.Name}'?", e.Hint)
    | other -> failwithf "%A" other

[<Fact>]
let ``a word a keyword does not know is refused with the table's words as the hint`` () =
    let hintOf (text: string) =
        match Config.parseText text "/etc/lb" (fun _ -> true) with
        | Error [ e ] -> e.Keyword, e.Hint
        | other -> failwithf "%A" other
    Assert.Equal(("persistence.mode", "use \"named\" or \"opaque\""), hintOf (minimal + "[persistence]\nmode = \"hidden\"\n"))
    Assert.Equal(("apps.b.balance", "did you mean 'leastconn'?"), hintOf (minimal + "[apps.b]\nbalance = \"leastcon\"\nservers = [ { name = \"s\", address = \"10.0.0.2:80\" } ]\n"))
    Assert.Equal(("listen.plain_http", "use \"redirect\" or \"proxy\""), hintOf (minimal.Replace("[listen]\n", "[listen]\nplain_http = \"tunnel\"\n")))
