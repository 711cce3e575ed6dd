namespace Lb.Rules

open System
open System.Globalization
open Giraffe.ViewEngine

/// The stats page (HAProxy's `stats uri`), rendered from a `StatsReport` with Giraffe.ViewEngine: one table per
/// app, a row per server, and the admin forms. Pure: the anti-CSRF token comes in as an argument; every text
/// from config or clients goes through ViewEngine's HTML encoding.
[<RequireQualifiedAccess>]
module StatsPage =

    /// The form field names the shell reads back from an admin POST.
    [<Literal>]
    let TokenField = "token"

    [<Literal>]
    let AppField = "app"

    [<Literal>]
    let ServerField = "server"

    [<Literal>]
    let ActionField = "action"

    [<Literal>]
    let DrainSecondsField = "drain_seconds"

    /// Where the forms post.
    [<Literal>]
    let AdminPath = "/admin"

    let private css =
        """
body { font: 13px/1.35 "DejaVu Sans", Verdana, Arial, sans-serif; margin: 16px; color: #1d232a; background: #fafbfc; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 22px 0 6px; }
.meta { color: #4a5560; margin-bottom: 8px; } .meta b { color: #1d232a; }
table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
th, td { border: 1px solid #d5dbe1; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: #e9eef3; font-weight: 600; } th.group { background: #dde5ec; text-align: center; }
td.name, th.name { text-align: left; } td.name small { color: #5b6670; display: block; }
td.check { text-align: left; max-width: 22em; overflow: hidden; text-overflow: ellipsis; }
tr.UP td.state { background: #c9f0c9; } tr.DOWN td.state { background: #f6b9b9; }
tr.DRAIN td.state { background: #fbe0a6; } tr.MAINT td.state { background: #c9d7f2; }
tr.DOWN { background: #fff3f3; } tr.MAINT, tr.DRAIN { background: #fbfbf3; }
td.state b { display: block; } td.state small { color: #3b444d; }
form.admin { display: flex; gap: 3px; align-items: center; margin: 0; }
form.admin input[type=number] { width: 5em; font-size: 12px; }
form.admin button { font-size: 12px; padding: 1px 6px; cursor: pointer; }
.summary { color: #4a5560; font-weight: normal; font-size: 13px; }
.actions { margin-top: 18px; color: #3b444d; } .actions li { font-family: "DejaVu Sans Mono", monospace; }
footer { margin-top: 18px; color: #5b6670; } footer a { margin-right: 12px; }
"""

    let private invariantInt (v: int64) = v.ToString("N0", CultureInfo.InvariantCulture)

    /// Bytes for people: `0`, `812 B`, `14.2 KiB`, `3.1 MiB`, `2.0 GiB`.
    [<CompiledName("Bytes")>]
    let bytes (n: int64) : string =
        let f (v: float) = v.ToString("0.0", CultureInfo.InvariantCulture)
        if n < 1024L then $"{n} B"
        elif n < 1024L * 1024L then f (float n / 1024.0) + " KiB"
        elif n < 1024L * 1024L * 1024L then f (float n / 1048576.0) + " MiB"
        else f (float n / 1073741824.0) + " GiB"

    let private num (v: int64) = td [] [ str (invariantInt v) ]

    let private iso (at: DateTimeOffset) =
        at.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)

    let private checkCell (now: DateTimeOffset) (s: ServerStats) =
        match s.CheckEnabled, s.LastCheck with
        | false, _ -> td [ _class "check" ] [ str "no check" ]
        | true, None -> td [ _class "check" ] [ str "not yet" ]
        | true, Some c ->
            let word = if c.Passed then "L7OK" else "FAIL"
            td
                [ _class "check"; _title $"{c.Detail} at {iso c.At}" ]
                [ str $"{word} {c.Detail}"; small [] [ str $" ({Stats.age (c.At, now)} ago)" ] ]

    let private adminForm (token: string) (app: string) (s: ServerStats) =
        let button (action: string) (label: string) =
            button
                [ _type "submit"
                  _name ActionField
                  _value action
                  attr "data-action" action
                  attr "data-server" (app + "/" + s.Name) ]
                [ str label ]
        form
            [ _class "admin"; _method "post"; _action AdminPath ]
            [ input [ _type "hidden"; _name TokenField; _value token ]
              input [ _type "hidden"; _name AppField; _value app ]
              input [ _type "hidden"; _name ServerField; _value s.Name ]
              button "ready" "Ready"
              button "drain" "Drain"
              input
                  [ _type "number"
                    _name DrainSecondsField
                    _min "1"
                    _max (string Admin.MaxDrainSeconds)
                    _placeholder "secs"
                    _title "optional: seconds after which pinned clients are redispatched too" ]
              button "maint" "Maint" ]

    let private serverRow (now: DateTimeOffset) (token: string) (app: string) (s: ServerStats) =
        let status = string s.Status
        let r = s.Responses
        tr
            [ _class status; attr "data-server" (app + "/" + s.Name) ]
            [ td [ _class "name" ] [ str s.Name; small [] [ str s.Address ] ]
              td
                  [ _class "state"; _title $"since {iso s.Since}; {Admin.describe s.Admin}" ]
                  [ b [ attr "data-status" status ] [ str status ]; small [] [ str $"for {Stats.age (s.Since, now)}" ] ]
              td [] [ str (string s.Weight) ]
              checkCell now s
              td [ _title "health counter / rise+fall-1; passed / failed checks" ] [
                  str $"{s.Health}/{s.Rise + s.Fall - 1}"
                  small [] [ str $" {invariantInt s.ChecksPassed}✓ {invariantInt s.ChecksFailed}✗" ]
              ]
              td [] [ str (string s.SessionsCurrent) ]
              td [] [ str (string s.SessionsMax) ]
              num s.SessionsTotal
              td [] [ str (string s.Queue) ]
              td [] [ str (bytes s.BytesIn) ]
              td [] [ str (bytes s.BytesOut) ]
              num r.R1xx
              num r.R2xx
              num r.R3xx
              num r.R4xx
              num r.R5xx
              num r.Other
              num s.PersistenceHits
              num s.Redispatches
              td [ attr "data-pinned" (string s.PinnedClients) ] [ str (string s.PinnedClients) ]
              td [ _class "name" ] [ adminForm token app s ] ]

    let private header =
        thead [] [
            tr [] [
                th [ _class "group name"; _rowspan "2" ] [ str "Server" ]
                th [ _class "group"; _rowspan "2" ] [ str "State" ]
                th [ _class "group"; _rowspan "2" ] [ str "Weight" ]
                th [ _class "group"; _rowspan "2" ] [ str "Last check" ]
                th [ _class "group"; _rowspan "2" ] [ str "Checks" ]
                th [ _class "group"; _colspan "4" ] [ str "Sessions" ]
                th [ _class "group"; _colspan "2" ] [ str "Bytes" ]
                th [ _class "group"; _colspan "6" ] [ str "Responses" ]
                th [ _class "group"; _colspan "3" ] [ str "Persistence" ]
                th [ _class "group name"; _rowspan "2" ] [ str "Admin" ]
            ]
            tr [] [
                for h in [ "cur"; "max"; "total"; "queue"; "in"; "out"; "1xx"; "2xx"; "3xx"; "4xx"; "5xx"; "other"; "hits"; "redisp"; "pinned" ] do
                    th [] [ str h ]
            ]
        ]

    let private appSection (now: DateTimeOffset) (token: string) (app: AppStats) =
        let counts =
            app.Servers
            |> Array.countBy (fun s -> s.Status)
            |> Array.sortBy (fun (s, _) -> string s |> fun w -> Array.IndexOf([| "UP"; "DRAIN"; "MAINT"; "DOWN" |], w))
            |> Array.map (fun (s, n) -> $"{n} {s}")
        let states = String.Join(", ", counts)
        section [ attr "data-app" app.Name ] [
            h2 [] [
                str $"/{app.Name}/ "
                span [ _class "summary" ] [
                    str
                        $"{app.Servers.Length} servers: {states} · {invariantInt app.Requests} requests · {invariantInt app.NoServer} without a server (503)"
                ]
            ]
            table [] [ header; tbody [] [ for s in app.Servers -> serverRow now token app.Name s ] ]
        ]

    /// The page's HTML document. `token` is the anti-CSRF token every admin form carries; the page reloads
    /// itself every `report.Refresh` (a meta refresh, so it works with scripts off).
    [<CompiledName("Render")>]
    let render (report: StatsReport, token: string) : string =
        let refresh = Math.Max(1, int (Math.Round report.Refresh.TotalSeconds))
        let vrrp = report.Vrrp |> Option.defaultValue "n/a"
        let document =
            html [ _lang "en" ] [
                head [] [
                    meta [ _charset "utf-8" ]
                    meta [ _httpEquiv "refresh"; _content (string refresh) ]
                    meta [ _name "viewport"; _content "width=device-width, initial-scale=1" ]
                    title [] [ str $"lb stats: {report.Node}" ]
                    style [] [ rawText css ]
                ]
                body [] [
                    yield h1 [] [ str $"lb stats — node {report.Node}" ]
                    yield div [ _class "meta" ] [
                        str "node "
                        b [ attr "data-node" report.Node ] [ str report.Node ]
                        str " · VRRP "
                        b [ attr "data-vrrp" vrrp ] [ str vrrp ]
                        str $" · lb {report.Version} · up {Stats.age (report.Started, report.Now)} · {iso report.Now} · refresh every {refresh} s"
                    ]
                    for app in report.Apps do
                        yield appSection report.Now token app
                    yield div [ _class "actions" ] [
                        h2 [] [ str "Recent admin actions" ]
                        if report.RecentActions.Length = 0 then
                            p [] [ str "none since start" ]
                        else
                            ul [] [ for a in report.RecentActions -> li [] [ str a ] ]
                    ]
                    yield footer [] [
                        a [ _href "stats.json" ] [ str "JSON" ]
                        a [ _href "stats.csv" ] [ str "CSV" ]
                        a [ _href "metrics" ] [ str "Prometheus metrics" ]
                    ]
                ]
            ]
        RenderView.AsString.htmlDocument document
