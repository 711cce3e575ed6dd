namespace Lb.Rules

open System
open System.Globalization
open System.Text
open System.Text.Json
open System.Text.Json.Nodes

/// Responses by status class (HAProxy's `hrsp_1xx` … `hrsp_5xx`, `hrsp_other`).
type ResponseClasses =
    { R1xx: int64
      R2xx: int64
      R3xx: int64
      R4xx: int64
      R5xx: int64
      /// No status reached the client (it went away first) or a status outside 100..599.
      Other: int64 }

/// The last health check of a server.
type CheckResult =
    { Passed: bool
      /// The HTTP status the server answered, if it answered.
      Status: int option
      Duration: TimeSpan
      /// `HTTP 200 in 3 ms`, `connection refused`, `timeout after 2000 ms`.
      Detail: string
      At: DateTimeOffset }

/// One server's row: what the operator sees, as the shell read it at one moment.
type ServerStats =
    { Name: string
      Address: string
      Weight: int
      Status: ServerStatus
      Admin: AdminState
      /// When the status last changed (health transition or admin action).
      Since: DateTimeOffset
      CheckEnabled: bool
      LastCheck: CheckResult option
      /// HAProxy's check counter (0..rise-1 down, rise..rise+fall-1 up), with rise and fall.
      Health: int
      Rise: int
      Fall: int
      ChecksPassed: int64
      ChecksFailed: int64
      SessionsCurrent: int
      SessionsMax: int
      SessionsTotal: int64
      /// Requests waiting for one of the server's `maxconn` slots.
      Queue: int
      /// Body bytes received from clients and sent to clients for requests this server answered.
      BytesIn: int64
      BytesOut: int64
      Responses: ResponseClasses
      /// Requests that came with a valid cookie for this server and were sent to it.
      PersistenceHits: int64
      /// Requests pinned to this server (cookie or a first attempt) that went to another one.
      Redispatches: int64
      /// Distinct clients seen with this server's cookie within the pinned window.
      PinnedClients: int }

type AppStats =
    { Name: string
      Servers: ServerStats array
      /// Requests routed to this app.
      Requests: int64
      /// Requests answered 503 because no server was usable.
      NoServer: int64
      Responses: ResponseClasses }

/// The whole report behind `/`, `/stats.json` and `/stats.csv`.
type StatsReport =
    { Node: string
      /// The VRRP state of this node (MASTER, BACKUP, …), None when VRRP is not configured.
      Vrrp: string option
      Version: string
      Now: DateTimeOffset
      Started: DateTimeOffset
      Refresh: TimeSpan
      Apps: AppStats array
      /// The latest admin actions, newest first, as logged.
      RecentActions: string array }

/// Turning a `StatsReport` into CSV and JSON, and the small decisions stats counting needs. Pure.
[<RequireQualifiedAccess>]
module Stats =

    /// Index 0..4 of a status's class 1xx..5xx, or 5 for anything else (HAProxy `hrsp_other`).
    [<CompiledName("StatusClass")>]
    let statusClass (status: int) : int =
        if status >= 100 && status <= 599 then status / 100 - 1 else 5

    let noResponses =
        { R1xx = 0L; R2xx = 0L; R3xx = 0L; R4xx = 0L; R5xx = 0L; Other = 0L }

    /// Builds the classes from six counters in `statusClass` order (what the shell keeps). Rejects
    /// (ArgumentException) an array that does not have six entries.
    [<CompiledName("Responses")>]
    let responses (counts: int64 array) : ResponseClasses =
        if counts.Length <> 6 then invalidArg (nameof counts) "six counters: 1xx, 2xx, 3xx, 4xx, 5xx, other"
        { R1xx = counts[0]; R2xx = counts[1]; R3xx = counts[2]; R4xx = counts[3]; R5xx = counts[4]; Other = counts[5] }

    /// Whether a forwarded request counts its client among the server's pinned clients (the stats page's
    /// "pinned" column): the client came with a cookie that pinned it, or leaves with a new one, and the request
    /// did not fail (status 1-499; 0 is a client that left before an answer).
    [<CompiledName("PinsClient")>]
    let pinsClient (selection: Selection, insertCookie: bool, status: int) : bool =
        (selection.IsPinned || insertCookie) && status > 0 && status < 500

    let private invariant (value: int64) = value.ToString(CultureInfo.InvariantCulture)

    let private iso (at: DateTimeOffset) =
        at.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)

    let private millis (d: TimeSpan) =
        Math.Round(d.TotalMilliseconds, 1).ToString(CultureInfo.InvariantCulture)

    /// How long ago, short: `42s`, `5m12s`, `3h05m`, `2d4h`.
    [<CompiledName("Age")>]
    let age (since: DateTimeOffset, now: DateTimeOffset) : string =
        let d = now - since
        let d = if d < TimeSpan.Zero then TimeSpan.Zero else d
        if d.TotalSeconds < 60.0 then $"{int d.TotalSeconds}s"
        elif d.TotalMinutes < 60.0 then $"{int d.TotalMinutes}m{d.Seconds:D2}s"
        elif d.TotalHours < 24.0 then $"{int d.TotalHours}h{d.Minutes:D2}m"
        else $"{int d.TotalDays}d{d.Hours}h"

    /// `passed` / `failed` / `none`, for CSV and JSON.
    let private checkWord (s: ServerStats) =
        match s.CheckEnabled, s.LastCheck with
        | false, _ -> "disabled"
        | true, None -> "none"
        | true, Some c -> if c.Passed then "passed" else "failed"

    // ---- CSV ----------------------------------------------------------------------------------------

    /// The CSV columns, one row per server.
    let csvColumns =
        [ "node"; "app"; "server"; "address"; "status"; "since"; "admin"; "weight"
          "check"; "check_status"; "check_duration_ms"; "check_detail"; "checks_passed"; "checks_failed"
          "health"; "rise"; "fall"
          "sessions_current"; "sessions_max"; "sessions_total"; "queue"; "bytes_in"; "bytes_out"
          "responses_1xx"; "responses_2xx"; "responses_3xx"; "responses_4xx"; "responses_5xx"; "responses_other"
          "persistence_hits"; "redispatches"; "pinned_clients" ]

    /// RFC 4180 §2: a field with a comma, quote, CR or LF is quoted, and its quotes doubled. A field starting
    /// with `=`, `+`, `-` or `@` gets a leading `'` so a spreadsheet does not run it as a formula (OWASP CSV
    /// injection); lb's own numbers never start so.
    let csvField (text: string) =
        let text = if text.Length > 0 && "=+-@".IndexOf text[0] >= 0 then "'" + text else text
        if text.IndexOfAny [| ','; '"'; '\r'; '\n' |] >= 0 then "\"" + text.Replace("\"", "\"\"") + "\"" else text

    let private csvRow (node: string) (app: AppStats) (s: ServerStats) =
        let check = s.LastCheck
        [ node; app.Name; s.Name; s.Address; string s.Status; iso s.Since; Admin.describe s.Admin; string s.Weight
          checkWord s
          check |> Option.bind (fun c -> c.Status) |> Option.map string |> Option.defaultValue ""
          check |> Option.map (fun c -> millis c.Duration) |> Option.defaultValue ""
          check |> Option.map (fun c -> c.Detail) |> Option.defaultValue ""
          invariant s.ChecksPassed; invariant s.ChecksFailed
          string s.Health; string s.Rise; string s.Fall
          string s.SessionsCurrent; string s.SessionsMax; invariant s.SessionsTotal; string s.Queue
          invariant s.BytesIn; invariant s.BytesOut
          invariant s.Responses.R1xx; invariant s.Responses.R2xx; invariant s.Responses.R3xx
          invariant s.Responses.R4xx; invariant s.Responses.R5xx; invariant s.Responses.Other
          invariant s.PersistenceHits; invariant s.Redispatches; string s.PinnedClients ]
        |> List.map csvField
        |> String.concat ","

    /// The report as CSV (RFC 4180): a header line, then one line per server, CRLF line ends.
    [<CompiledName("ToCsv")>]
    let toCsv (report: StatsReport) : string =
        let text = StringBuilder()
        text.Append(String.Join(",", csvColumns)).Append("\r\n") |> ignore
        for app in report.Apps do
            for server in app.Servers do
                text.Append(csvRow report.Node app server).Append("\r\n") |> ignore
        text.ToString()

    // ---- JSON ---------------------------------------------------------------------------------------

    let private responsesJson (r: ResponseClasses) =
        JsonObject(
            [ Collections.Generic.KeyValuePair("1xx", JsonValue.Create r.R1xx :> JsonNode)
              Collections.Generic.KeyValuePair("2xx", JsonValue.Create r.R2xx :> JsonNode)
              Collections.Generic.KeyValuePair("3xx", JsonValue.Create r.R3xx :> JsonNode)
              Collections.Generic.KeyValuePair("4xx", JsonValue.Create r.R4xx :> JsonNode)
              Collections.Generic.KeyValuePair("5xx", JsonValue.Create r.R5xx :> JsonNode)
              Collections.Generic.KeyValuePair("other", JsonValue.Create r.Other :> JsonNode) ]
        )

    let private obj (pairs: (string * JsonNode | null) list) =
        let o = JsonObject()
        for k, v in pairs do
            o[k] <- v
        o

    /// One overload per value type the report holds: the generic JsonValue.Create<'T> needs reflection,
    /// which a NativeAOT build does not have.
    type private Json =
        static member Of(v: string) : JsonNode | null = JsonValue.Create v
        static member Of(v: int) : JsonNode | null = JsonValue.Create v
        static member Of(v: int64) : JsonNode | null = JsonValue.Create v
        static member Of(v: float) : JsonNode | null = JsonValue.Create v
        static member Of(v: bool) : JsonNode | null = JsonValue.Create v

    let private serverJson (s: ServerStats) : JsonNode | null =
        let check =
            match s.LastCheck with
            | None -> null
            | Some c ->
                obj
                    [ "passed", Json.Of(c.Passed)
                      "status", (match c.Status with Some st -> Json.Of(st) | None -> null)
                      "duration_ms", Json.Of(Math.Round(c.Duration.TotalMilliseconds, 1))
                      "detail", Json.Of(c.Detail)
                      "at", Json.Of(iso c.At) ]
        obj
            [ "name", Json.Of(s.Name)
              "address", Json.Of(s.Address)
              "status", Json.Of(string s.Status)
              "since", Json.Of(iso s.Since)
              "admin", Json.Of(Admin.describe s.Admin)
              "weight", Json.Of(s.Weight)
              "check_enabled", Json.Of(s.CheckEnabled)
              "last_check", check
              "checks_passed", Json.Of(s.ChecksPassed)
              "checks_failed", Json.Of(s.ChecksFailed)
              "health", Json.Of(s.Health)
              "rise", Json.Of(s.Rise)
              "fall", Json.Of(s.Fall)
              "sessions", obj [ "current", Json.Of(s.SessionsCurrent); "max", Json.Of(s.SessionsMax); "total", Json.Of(s.SessionsTotal) ]
              "queue", Json.Of(s.Queue)
              "bytes_in", Json.Of(s.BytesIn)
              "bytes_out", Json.Of(s.BytesOut)
              "responses", responsesJson s.Responses
              "persistence_hits", Json.Of(s.PersistenceHits)
              "redispatches", Json.Of(s.Redispatches)
              "pinned_clients", Json.Of(s.PinnedClients) ]

    /// The report as JSON: node, vrrp (null when not configured), apps with their servers; times in UTC ISO 8601.
    [<CompiledName("ToJson")>]
    let toJson (report: StatsReport) : string =
        let apps = JsonArray()
        for app in report.Apps do
            let servers = JsonArray()
            for s in app.Servers do
                servers.Add(serverJson s)
            apps.Add(
                obj
                    [ "name", Json.Of(app.Name)
                      "requests", Json.Of(app.Requests)
                      "no_server", Json.Of(app.NoServer)
                      "responses", responsesJson app.Responses
                      "servers", servers ]
            )
        let root =
            obj
                [ "node", Json.Of(report.Node)
                  "vrrp", (match report.Vrrp with Some v -> Json.Of(v) | None -> null)
                  "version", Json.Of(report.Version)
                  "now", Json.Of(iso report.Now)
                  "started", Json.Of(iso report.Started)
                  "refresh_s", Json.Of(report.Refresh.TotalSeconds)
                  "apps", apps ]
        root.ToJsonString(JsonSerializerOptions(WriteIndented = true))
