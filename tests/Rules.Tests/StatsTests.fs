module Lb.Rules.Tests.StatsTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open Lb.Rules

let private forAll (g: Gen<'T>) (law: 'T -> bool) = Prop.forAll (Arb.fromGen g) law

let private salt = Array.init 16 byte

/// The cheapest hash `Password` accepts: these tests hash many times.
let private hashOf password = Password.hash (password, salt, Password.MinIterations)

let private now = DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero)

// ---- Password hashes ---------------------------------------------------------------------------------

[<Fact>]
let ``a hash round trips through its text and verifies only its own password`` () =
    let hash = hashOf "s3cret-Pa55"
    let text = string hash
    Assert.StartsWith("pbkdf2-sha256$10000$", text)
    match Password.parse text with
    | Ok back ->
        Assert.True(Password.verify (back, "s3cret-Pa55"))
        Assert.False(Password.verify (back, "s3cret-pa55"))
        Assert.False(Password.verify (back, ""))
    | Error e -> failwith e

[<Fact>]
let ``PBKDF2-HMAC-SHA256 matches the published test vector`` () =
    // RFC 7914 §11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, dkLen=64 — first 32 bytes. The module
    // refuses c=1, so compare the primitive it calls with the same arguments.
    let dk =
        Security.Cryptography.Rfc2898DeriveBytes.Pbkdf2(
            Text.Encoding.UTF8.GetBytes "passwd",
            Text.Encoding.UTF8.GetBytes "salt",
            1,
            Security.Cryptography.HashAlgorithmName.SHA256,
            32
        )
    Assert.Equal("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc", Convert.ToHexString(dk).ToLowerInvariant())

[<Theory>]
[<InlineData("")>]
[<InlineData("bcrypt$10$abc$def")>]
[<InlineData("pbkdf2-sha256$100$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")>]
[<InlineData("pbkdf2-sha256$10000$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")>]
[<InlineData("pbkdf2-sha256$10000$AAAAAAAAAAAAAAAAAAAAAA==$AAAA")>]
[<InlineData("pbkdf2-sha256$10000$not base64!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")>]
[<InlineData("pbkdf2-sha256$ten$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")>]
[<InlineData("admin")>]
let ``text that is not a usable hash is refused with a reason`` (text: string) =
    match Password.parse text with
    | Ok _ -> failwithf "accepted %s" text
    | Error message -> Assert.NotEmpty message

[<Theory>]
[<InlineData("admin", "admin")>]
[<InlineData("", "admin")>]
[<InlineData("password", "ops")>]
[<InlineData("changeme", "ops")>]
[<InlineData("lb", "ops")>]
[<InlineData("operator", "operator")>]
[<InlineData("rotarepo", "operator")>]
let ``well-known passwords and the user name are found from the hash alone`` (password: string, user: string) =
    Assert.Equal(Some password, Password.findWellKnown (hashOf password, user))

[<Fact>]
let ``a real password is not reported as well known`` () =
    Assert.Equal(None, Password.findWellKnown (hashOf "correct horse battery staple", "admin"))

// ---- Admin state -------------------------------------------------------------------------------------

let private adminStates =
    Gen.oneof
        [ Gen.constant AdminState.Ready
          Gen.constant AdminState.Maint
          Gen.constant (AdminState.Drain None)
          Gen.choose (-3600, 3600) |> Gen.map (fun s -> AdminState.Drain(Some(now.AddSeconds(float s)))) ]

[<Property(MaxTest = 300)>]
let ``a server takes new clients only when up and ready`` () =
    forAll (Gen.zip (Gen.elements [ true; false ]) adminStates) (fun (up, admin) ->
        Admin.usableForNew (up, admin) = (up && admin = AdminState.Ready))

[<Property(MaxTest = 300)>]
let ``every server usable for new clients keeps its pinned clients`` () =
    forAll (Gen.zip (Gen.elements [ true; false ]) adminStates) (fun (up, admin) ->
        not (Admin.usableForNew (up, admin)) || Admin.usableForPinned (up, admin, now))

[<Property(MaxTest = 300)>]
let ``a down server or one in maintenance keeps no pinned client`` () =
    forAll adminStates (fun admin ->
        not (Admin.usableForPinned (false, admin, now)) && not (Admin.usableForPinned (true, AdminState.Maint, now)))

[<Property(MaxTest = 300)>]
let ``a draining server keeps pinned clients exactly until its deadline`` () =
    forAll (Gen.choose (-100_000, 100_000)) (fun offsetMs ->
        let deadline = now.AddMilliseconds(float offsetMs)
        Admin.usableForPinned (true, Admin.drainUntil deadline, now) = (now < deadline)
        && Admin.usableForPinned (true, Admin.drain, now)
        && not (Admin.usableForNew (true, Admin.drainUntil deadline)))

[<Fact>]
let ``the status shows the admin state before health`` () =
    Assert.Equal(ServerStatus.Up, Admin.status (true, AdminState.Ready))
    Assert.Equal(ServerStatus.Down, Admin.status (false, AdminState.Ready))
    Assert.Equal(ServerStatus.Drain, Admin.status (false, Admin.drain))
    Assert.Equal(ServerStatus.Maint, Admin.status (true, AdminState.Maint))
    Assert.Equal("DRAIN", string ServerStatus.Drain)

[<Fact>]
let ``admin actions parse with an optional drain deadline`` () =
    Assert.Equal(Ok AdminState.Ready, Admin.parseAction ("ready", "", now))
    Assert.Equal(Ok AdminState.Maint, Admin.parseAction ("MAINT", " ", now))
    Assert.Equal(Ok(AdminState.Drain None), Admin.parseAction ("drain", "", now))
    Assert.Equal(Ok(AdminState.Drain(Some(now.AddSeconds 30.0))), Admin.parseAction ("drain", "30", now))
    for action, seconds in [ "drain", "0"; "drain", "-5"; "drain", "1.5"; "drain", "604801"; "maint", "30"; "halt", ""; "", "" ] do
        match Admin.parseAction (action, seconds, now) with
        | Ok s -> failwithf "accepted %s %s as %A" action seconds s
        | Error message -> Assert.NotEmpty message

// ---- Reports -----------------------------------------------------------------------------------------

let private server name status admin : ServerStats =
    { Name = name
      Address = "127.0.0.1:9101"
      Weight = 1
      Status = status
      Admin = admin
      Since = now.AddMinutes -3.0
      CheckEnabled = true
      LastCheck = Some { Passed = true; Status = Some 200; Duration = TimeSpan.FromMilliseconds 3.0; Detail = "HTTP 200 in 3 ms"; At = now }
      Health = 3
      Rise = 2
      Fall = 2
      ChecksPassed = 10L
      ChecksFailed = 1L
      SessionsCurrent = 0
      SessionsMax = 4
      SessionsTotal = 1234L
      Queue = 0
      BytesIn = 10L
      BytesOut = 2048L
      Responses = { Stats.noResponses with R2xx = 1200L; R5xx = 34L }
      PersistenceHits = 900L
      Redispatches = 2L
      PinnedClients = 7 }

let private report: StatsReport =
    { Node = "lb1"
      Vrrp = None
      Version = "1.0.0"
      Now = now
      Started = now.AddHours -1.0
      Refresh = TimeSpan.FromSeconds 10.0
      Apps =
        [| { Name = "app1"
             Servers = [| server "app1_1" ServerStatus.Up AdminState.Ready; server "app1_2" ServerStatus.Drain Admin.drain |]
             Requests = 1300L
             NoServer = 1L
             Responses = Stats.noResponses }
           { Name = "app2"
             Servers = [| server "app2_<b>" ServerStatus.Down AdminState.Ready |]
             Requests = 0L
             NoServer = 0L
             Responses = Stats.noResponses } |]
      RecentActions = [| "2025-03-01 11:59:00Z admin@127.0.0.1: app1/app1_2 READY -> DRAIN" |] }

[<Fact>]
let ``the page lists every server with its state, refreshes itself and escapes names`` () =
    let html = StatsPage.render (report, "tok123")
    Assert.Contains("<meta http-equiv=\"refresh\" content=\"10\">", html)
    Assert.Contains("data-server=\"app1/app1_1\"", html)
    Assert.Contains("data-server=\"app1/app1_2\"", html)
    Assert.Contains("data-status=\"DRAIN\"", html)
    Assert.Contains("data-vrrp=\"n/a\"", html)
    Assert.Contains("name=\"token\" value=\"tok123\"", html)
    Assert.Contains("app2_&lt;b&gt;", html)
    Assert.DoesNotContain("app2_<b>", html)

[<Fact>]
let ``the page shows the VRRP state when there is one`` () =
    let html = StatsPage.render ({ report with Vrrp = Some "MASTER" }, "t")
    Assert.Contains("data-vrrp=\"MASTER\"", html)

[<Fact>]
let ``the CSV has a header and one line per server, with the counters`` () =
    let lines = (Stats.toCsv report).Split("\r\n", StringSplitOptions.RemoveEmptyEntries)
    Assert.Equal(4, lines.Length)
    Assert.Equal(String.Join(",", Stats.csvColumns), lines[0])
    let row = lines[1].Split ','
    let column name = row[Stats.csvColumns |> List.findIndex ((=) name)]
    Assert.Equal("app1_1", column "server")
    Assert.Equal("UP", column "status")
    Assert.Equal("1234", column "sessions_total")
    Assert.Equal("34", column "responses_5xx")
    Assert.Equal("7", column "pinned_clients")
    Assert.Equal("200", column "check_status")

[<Property(MaxTest = 300)>]
let ``a CSV field always reads back as one field with its text`` () =
    let text = Gen.elements [ 'a'; ','; '"'; '\n'; '\r'; ' '; '='; '-'; 'é' ] |> Gen.listOf |> Gen.map String.Concat
    forAll text (fun s ->
        let field = Stats.csvField s
        // Quoted fields are whole: a comma or line end inside is data. Unquoted ones hold neither.
        let unquoted =
            if field.StartsWith "\"" then field.Substring(1, field.Length - 2).Replace("\"\"", "\"") else field
        field.IndexOfAny [| ','; '\r'; '\n' |] < 0 || field.StartsWith "\""
        && (unquoted = s || unquoted = "'" + s))

[<Fact>]
let ``the JSON names node, vrrp, apps and server counters`` () =
    use doc = Text.Json.JsonDocument.Parse(Stats.toJson report)
    let root = doc.RootElement
    Assert.Equal("lb1", root.GetProperty("node").GetString())
    Assert.Equal(Text.Json.JsonValueKind.Null, root.GetProperty("vrrp").ValueKind)
    let s = root.GetProperty("apps").[0].GetProperty("servers").[1]
    Assert.Equal("app1_2", s.GetProperty("name").GetString())
    Assert.Equal("DRAIN", s.GetProperty("status").GetString())
    Assert.Equal(1234L, s.GetProperty("sessions").GetProperty("total").GetInt64())
    Assert.Equal(34L, s.GetProperty("responses").GetProperty("5xx").GetInt64())
    Assert.Equal(200, s.GetProperty("last_check").GetProperty("status").GetInt32())

[<Property>]
let ``every status falls in exactly one class`` (status: int) =
    let c = Stats.statusClass status
    if status >= 100 && status <= 599 then c = status / 100 - 1 else c = 5

// ---- Access log --------------------------------------------------------------------------------------

let private entry: AccessLogEntry =
    { ClientAddress = "192.0.2.7"
      ForwardedFor = "203.0.113.9"
      Time = DateTimeOffset(2000, 10, 10, 13, 55, 36, TimeSpan.Zero)
      Method = "GET"
      Target = "/app1/x?y=1"
      Protocol = "HTTP/1.1"
      Status = 200
      BytesSent = 2326L
      Referer = "http://site/"
      UserAgent = "Mozilla/4.08"
      App = "app1"
      Server = "app1_2"
      QueueMs = 0L
      ConnectMs = 1L
      ResponseMs = 3L
      TotalMs = 4L }

[<Fact>]
let ``a log line is Apache combined followed by app, server and timings`` () =
    Assert.Equal(
        "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] \"GET /app1/x?y=1 HTTP/1.1\" 200 2326 \"http://site/\" \"Mozilla/4.08\" "
        + "app=app1 server=app1_2 queue=0 connect=1 response=3 total=4 xff=\"203.0.113.9\"",
        AccessLog.format entry
    )

[<Fact>]
let ``a request that reached no server logs dashes and -1 timings`` () =
    let line =
        AccessLog.format { entry with App = ""; Server = ""; BytesSent = 0L; ConnectMs = -1L; ResponseMs = -1L; ForwardedFor = ""; Referer = "" }
    Assert.EndsWith("\"-\" \"Mozilla/4.08\" app=- server=- queue=0 connect=-1 response=-1 total=4 xff=\"-\"", line)
    Assert.Contains(" 200 - ", line)

/// Splits a log line into fields: spaces separate them, except inside "..." where `\"` and `\\` are escapes.
let private fields (line: string) =
    let result = ResizeArray<string>()
    let current = Text.StringBuilder()
    let mutable quoted = false
    let mutable i = 0
    while i < line.Length do
        match line[i] with
        | '\\' when i + 1 < line.Length ->
            current.Append(line[i]).Append(line[i + 1]) |> ignore
            i <- i + 1
        | '"' ->
            quoted <- not quoted
            current.Append '"' |> ignore
        | '[' when not quoted -> current.Append '[' |> ignore
        | ' ' when not quoted && not (current.Length > 0 && current[0] = '[' && current[current.Length - 1] <> ']') ->
            result.Add(current.ToString())
            current.Clear() |> ignore
        | c -> current.Append c |> ignore
        i <- i + 1
    result.Add(current.ToString())
    List.ofSeq result

[<Property(MaxTest = 300)>]
let ``client-controlled text can neither break the line nor add a field`` () =
    let hostile =
        Gen.elements [ "a"; "\""; "\\"; "\n"; "\r"; " "; "é"; "\u0000"; "x=y"; "\" app=evil"; "]" ] |> Gen.listOf |> Gen.map String.Concat
    forAll (Gen.zip3 hostile hostile hostile) (fun (target, ua, xff) ->
        let line = AccessLog.format { entry with Target = target; UserAgent = ua; ForwardedFor = xff; Referer = ua }
        let f = fields line
        not (line.Contains '\n') && not (line.Contains '\r') && f.Length = 16
        && f[9] = "app=app1" && f[10] = "server=app1_2" && f[14] = "total=4")

/// The access log line as it was first written, from strings (Apache's ap_escape_logitem per field, fields
/// joined by spaces): the specification `AccessLog.write`, which writes bytes, must match exactly.
module private ReferenceLine =
    open System.Globalization
    open System.Text

    let escape (text: string) =
        let out = StringBuilder()
        for b in Encoding.UTF8.GetBytes text do
            match char b with
            | '"' -> out.Append("\\\"") |> ignore
            | '\\' -> out.Append("\\\\") |> ignore
            | _ when b < 0x20uy || b >= 0x7Fuy -> out.Append("\\x").Append(b.ToString("x2", CultureInfo.InvariantCulture)) |> ignore
            | c -> out.Append c |> ignore
        out.ToString()

    let token (text: string) = if String.IsNullOrEmpty text then "-" else (escape text).Replace(" ", "\\x20")
    let quoted (text: string) = if String.IsNullOrEmpty text then "\"-\"" else "\"" + escape text + "\""
    let ms (v: int64) = if v < 0L then "-1" else v.ToString(CultureInfo.InvariantCulture)

    let format (e: AccessLogEntry) =
        String.Join(
            " ",
            [| token e.ClientAddress; "-"; "-"
               "[" + e.Time.ToUniversalTime().ToString("dd/MMM/yyyy:HH:mm:ss", CultureInfo.InvariantCulture) + " +0000]"
               quoted (e.Method + " " + e.Target + " " + e.Protocol)
               e.Status.ToString(CultureInfo.InvariantCulture)
               (if e.BytesSent <= 0L then "-" else e.BytesSent.ToString(CultureInfo.InvariantCulture))
               quoted e.Referer; quoted e.UserAgent
               "app=" + token e.App; "server=" + token e.Server
               "queue=" + ms e.QueueMs; "connect=" + ms e.ConnectMs; "response=" + ms e.ResponseMs; "total=" + ms e.TotalMs
               "xff=" + quoted e.ForwardedFor |]
        )

[<Property(MaxTest = 500)>]
let ``the access log writes exactly the line Apache's escaping of each field gives`` () =
    let text =
        Gen.frequency
            [ 6, Gen.elements [ "a"; "Z"; "/"; "?"; "="; "\""; "\\"; "\n"; "\r"; "\t"; " "; "é"; "😀"; "\u0000"; "\u007F"; "\ud800"; "]" ]
              1, ArbMap.defaults |> ArbMap.generate<string> |> Gen.map (fun s -> if String.IsNullOrEmpty s then "" else s) ]
        |> Gen.listOf
        |> Gen.map String.Concat
    let number = Gen.elements [ -5L; -1L; 0L; 1L; 9L; 10L; 2326L; Int64.MaxValue ]
    let time =
        Gen.map2 (fun (ticks: int64) (offsetHours: int) ->
                    DateTimeOffset(abs ticks % (DateTime.MaxValue.Ticks - TimeSpan.TicksPerDay) + TimeSpan.TicksPerDay,
                                   TimeSpan.FromHours(float offsetHours)))
            (ArbMap.defaults |> ArbMap.generate<int64>) (Gen.choose (-12, 14))
    let entries =
        gen {
            let! strings = Gen.arrayOfLength 10 text
            let! numbers = Gen.arrayOfLength 5 number
            let! status = Gen.choose (-1, 1000)
            let! at = time
            return
                { ClientAddress = strings[0]; ForwardedFor = strings[1]; Time = at; Method = strings[2]; Target = strings[3]
                  Protocol = strings[4]; Status = status; BytesSent = numbers[0]; Referer = strings[5]; UserAgent = strings[6]
                  App = strings[7]; Server = strings[8]; QueueMs = numbers[1]; ConnectMs = numbers[2]; ResponseMs = numbers[3]
                  TotalMs = numbers[4] }
        }
    forAll entries (fun e -> AccessLog.format e = ReferenceLine.format e)

[<Fact>]
let ``an entry with null strings (from C#) logs them as empty, without failing`` () =
    let line =
        let none = Unchecked.defaultof<string>
        AccessLog.format { entry with Method = none; Target = none; UserAgent = none; App = none; ForwardedFor = none }
    Assert.Contains("\"  HTTP/1.1\" 200 2326 \"http://site/\" \"-\" app=- server=app1_2", line)
    Assert.EndsWith("xff=\"-\"", line)

// ---- [stats] and [log] config ------------------------------------------------------------------------

let private goodHash = string (hashOf "a long and unusual pass phrase")

let private configWith (extra: string) (files: Map<string, string>) =
    let text =
        "[listen]\nhttp = \"127.0.0.1:18080\"\n[apps.app1]\nservers = [ { name = \"a\", address = \"127.0.0.1:9101\" } ]\n"
        + extra
    let io =
        { FileExists = (fun _ -> true)
          CheckTls = (fun _ -> [])
          ReadText = fun path -> match files.TryFind path with Some t -> Ok t | None -> Error "No such file" }
    Config.parseTextWith io text "/etc/lb"

let private errorsOf result =
    match result with
    | Ok _ -> []
    | Error errors -> errors |> List.map (fun (e: ConfigError) -> e.Keyword, e.Message)

[<Fact>]
let ``without [stats] there is no stats listener and the access log goes to stdout`` () =
    match configWith "" Map.empty with
    | Ok c ->
        Assert.Equal(None, c.Stats)
        Assert.Equal(AccessLogTarget.Stdout, c.Log.Access)
    | Error e -> failwithf "%A" e

[<Fact>]
let ``the issue's [stats] and [log] load with their defaults`` () =
    match configWith $"[stats]\npassword_hash = \"{goodHash}\"\n[log]\naccess = \"logs/access.log\"\n" Map.empty with
    | Ok c ->
        let s = c.Stats.Value
        Assert.Equal({ Host = "127.0.0.1"; Port = 8000 }, s.Listen)
        Assert.Equal("lb stats", s.Realm)
        Assert.Equal("admin", s.User)
        Assert.Equal(TimeSpan.FromSeconds 10.0, s.Refresh)
        Assert.Equal(goodHash, string s.PasswordHash)
        Assert.Equal(AccessLogTarget.File "/etc/lb/logs/access.log", c.Log.Access)
    | Error e -> failwithf "%A" e

[<Fact>]
let ``every [stats] key is read`` () =
    let text =
        $"[stats]\nlisten = \"0.0.0.0:9000\"\nrealm = \"ops\"\nuser = \"ops\"\npassword_file = \"stats.pw\"\nrefresh = \"3s\"\npinned_window = \"1m\"\n[log]\naccess = \"off\"\n"
    match configWith text (Map [ "/etc/lb/stats.pw", goodHash + "\n" ]) with
    | Ok c ->
        let s = c.Stats.Value
        Assert.Equal({ Host = "0.0.0.0"; Port = 9000 }, s.Listen)
        Assert.Equal("ops", s.Realm)
        Assert.Equal("ops", s.User)
        Assert.Equal(TimeSpan.FromSeconds 3.0, s.Refresh)
        Assert.Equal(TimeSpan.FromMinutes 1.0, s.PinnedWindow)
        Assert.Equal(AccessLogTarget.Off, c.Log.Access)
    | Error e -> failwithf "%A" e

[<Fact>]
let ``the seed's admin:admin is refused, as are an empty password and the user name`` () =
    for password, user, says in [ "admin", "admin", "the user name"; "", "ops", "empty"; "changeme", "ops", "'changeme'"; "ops", "ops", "the user name" ] do
        let text = $"[stats]\nuser = \"{user}\"\npassword_hash = \"{hashOf password}\"\n"
        match errorsOf (configWith text Map.empty) with
        | [ kw, message ] ->
            Assert.Equal("stats.password_hash", kw)
            Assert.Contains(says, message)
        | other -> failwithf "%s/%s: %A" user password other

[<Fact>]
let ``[stats] mistakes are reported with their keyword`` () =
    let cases =
        [ "[stats]\n", "stats.password_hash"
          $"[stats]\npassword_hash = \"{goodHash}\"\npassword_file = \"x\"\n", "stats.password_file"
          "[stats]\npassword_file = \"missing.pw\"\n", "stats.password_file"
          "[stats]\npassword_hash = \"admin\"\n", "stats.password_hash"
          $"[stats]\npassword_hash = \"{goodHash}\"\nlisten = \"127.0.0.1:18080\"\n", "stats.listen"
          $"[stats]\npassword_hash = \"{goodHash}\"\nlisten = \"127.0.0.1:0\"\n", "stats.listen"
          $"[stats]\npassword_hash = \"{goodHash}\"\nrealm = \"a\\\"b\"\n", "stats.realm"
          $"[stats]\npassword_hash = \"{goodHash}\"\nuser = \"a:b\"\n", "stats.user"
          $"[stats]\npassword_hash = \"{goodHash}\"\nrefresh = \"100ms\"\n", "stats.refresh"
          $"[stats]\npassword_hash = \"{goodHash}\"\nrefresh = \"10\"\n", "stats.refresh"
          $"[stats]\npassword_hash = \"{goodHash}\"\npasword = \"x\"\n", "stats.pasword"
          "[log]\naccess = \"\"\n", "log.access"
          "[log]\nerror = \"x\"\n", "log.error" ]
    for text, keyword in cases do
        match errorsOf (configWith text Map.empty) with
        | [] -> failwithf "accepted:\n%s" text
        | errors -> Assert.True(errors |> List.exists (fun (k, _) -> k = keyword), $"{text}: {errors}")
