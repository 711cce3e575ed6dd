namespace Lb.Rules

open System
open System.Globalization
open System.Text

/// One request as the access log records it. Timings are whole milliseconds, -1 for a step the request never
/// reached (HAProxy's convention: a redirect has no queue, connect or response time).
type AccessLogEntry =
    { ClientAddress: string
      /// The X-Forwarded-For the client sent, "" when none.
      ForwardedFor: string
      Time: DateTimeOffset
      Method: string
      /// The request target as received.
      Target: string
      Protocol: string
      Status: int
      /// Response body bytes sent to the client.
      BytesSent: int64
      Referer: string
      UserAgent: string
      /// "" when the request was not routed to an app (redirect, 400, 404).
      App: string
      /// "" when no server was chosen.
      Server: string
      /// Waiting for a `maxconn` slot (global and server).
      QueueMs: int64
      /// Opening a TCP connection to the server; 0 when a pooled connection was reused.
      ConnectMs: int64
      /// From sending the request to the server until its response headers arrived.
      ResponseMs: int64
      TotalMs: int64 }

/// Apache's combined log format extended with lb's fields:
/// `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" app=A server=S queue=Q connect=C response=R total=T xff="X"`.
/// The first nine fields are exactly combined, so existing log tools read the line; the rest are key=value.
[<RequireQualifiedAccess>]
module AccessLog =

    /// Apache's ap_escape_logitem: `"` and `\` are escaped with a backslash, control characters and every
    /// non-ASCII byte (UTF-8) as `\xhh`, so a client can neither break the line nor forge a field.
    [<CompiledName("Escape")>]
    let escape (text: string) : string =
        let out = StringBuilder(text.Length)
        for b in Encoding.UTF8.GetBytes text do
            match char b with
            | '"' -> out.Append("\\\"") |> ignore
            | '\\' -> out.Append("\\\\") |> ignore
            | c when b < 0x20uy || b >= 0x7Fuy -> out.Append("\\x").Append(b.ToString("x2", CultureInfo.InvariantCulture)) |> ignore
            | c -> out.Append c |> ignore
        out.ToString()

    /// A field that is a single token: `-` when empty (Apache's convention), escaped otherwise; spaces are
    /// escaped too so the field count never changes.
    let private token (text: string) =
        if String.IsNullOrEmpty text then "-" else (escape text).Replace(" ", "\\x20")

    let private quoted (text: string) =
        if String.IsNullOrEmpty text then "\"-\"" else "\"" + escape text + "\""

    /// `[10/Oct/2000:13:55:36 +0000]`, Apache's `%t`, in UTC.
    [<CompiledName("Timestamp")>]
    let timestamp (at: DateTimeOffset) : string =
        "[" + at.ToUniversalTime().ToString("dd/MMM/yyyy:HH:mm:ss", CultureInfo.InvariantCulture) + " +0000]"

    /// One log line, without the line end.
    [<CompiledName("Format")>]
    let format (e: AccessLogEntry) : string =
        let ms (v: int64) = if v < 0L then "-1" else v.ToString(CultureInfo.InvariantCulture)
        let bytes = if e.BytesSent <= 0L then "-" else e.BytesSent.ToString(CultureInfo.InvariantCulture)
        let request = $"{e.Method} {e.Target} {e.Protocol}"
        String.Join(
            " ",
            [| token e.ClientAddress
               "-"
               "-"
               timestamp e.Time
               quoted request
               e.Status.ToString(CultureInfo.InvariantCulture)
               bytes
               quoted e.Referer
               quoted e.UserAgent
               "app=" + token e.App
               "server=" + token e.Server
               "queue=" + ms e.QueueMs
               "connect=" + ms e.ConnectMs
               "response=" + ms e.ResponseMs
               "total=" + ms e.TotalMs
               "xff=" + quoted e.ForwardedFor |]
        )
