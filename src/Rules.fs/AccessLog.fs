namespace Lb.Rules

open System
open System.Globalization
open System.Buffers
open System.Buffers.Text
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
/// A line is written as ASCII bytes straight into the caller's buffer: it is built for every request lb serves,
/// and building it from strings cost a quarter of all the bytes a forwarded request allocated (issue 7).
[<RequireQualifiedAccess>]
module AccessLog =

    /// Text that is known to be ASCII (lb's own words, digits), one byte per character.
    let private ascii (out: IBufferWriter<byte>) (text: string) =
        let span = out.GetSpan text.Length
        for i in 0 .. text.Length - 1 do
            span[i] <- byte text[i]
        out.Advance text.Length

    let private oneByte (out: IBufferWriter<byte>) (b: byte) =
        (out.GetSpan 1)[0] <- b
        out.Advance 1

    let private hexDigits = "0123456789abcdef"B

    let private hexDigit (nibble: byte) = hexDigits[int nibble]

    /// Whether a character is written as itself: printable ASCII but `"` and `\`, and in a token not a space.
    let private isPlain (inToken: bool) (c: char) =
        c >= ' ' && c < '\u007F' && c <> '"' && c <> '\\' && not (inToken && c = ' ')

    let private allPlain (inToken: bool) (text: string) =
        let mutable i = 0
        while i < text.Length && isPlain inToken text[i] do
            i <- i + 1
        i = text.Length

    /// Apache's ap_escape_logitem: `"` and `\` are escaped with a backslash, control characters and every
    /// non-ASCII byte (UTF-8) as `\xhh`, so a client can neither break the line nor forge a field. In a token
    /// a space is `\x20` too, so the field count never changes. Null is written as nothing.
    let private escaped (out: IBufferWriter<byte>) (inToken: bool) (text: string) =
        if String.IsNullOrEmpty text then
            ()
        elif allPlain inToken text then
            ascii out text
        else
            for b in Encoding.UTF8.GetBytes text do
                if b = byte '"' || b = byte '\\' then
                    oneByte out (byte '\\')
                    oneByte out b
                elif b < 0x20uy || b >= 0x7Fuy || (inToken && b = byte ' ') then
                    let span = out.GetSpan 4
                    span[0] <- byte '\\'
                    span[1] <- byte 'x'
                    span[2] <- hexDigit (b >>> 4)
                    span[3] <- hexDigit (b &&& 0xFuy)
                    out.Advance 4
                else
                    oneByte out b

    /// A field that is a single token: `-` when empty (Apache's convention), escaped otherwise.
    let private token (out: IBufferWriter<byte>) (text: string) =
        if String.IsNullOrEmpty text then oneByte out (byte '-') else escaped out true text

    let private quoted (out: IBufferWriter<byte>) (text: string) =
        oneByte out (byte '"')
        if String.IsNullOrEmpty text then oneByte out (byte '-') else escaped out false text
        oneByte out (byte '"')

    let private number (out: IBufferWriter<byte>) (value: int64) =
        let span = out.GetSpan 20
        match Utf8Formatter.TryFormat(value, span) with
        | true, written -> out.Advance written
        | false, _ -> ascii out (value.ToString(CultureInfo.InvariantCulture))

    /// Two digits, zero-padded.
    let private twoDigits (out: IBufferWriter<byte>) (value: int) =
        let span = out.GetSpan 2
        span[0] <- byte '0' + byte (value / 10)
        span[1] <- byte '0' + byte (value % 10)
        out.Advance 2

    let private months = [| "Jan"; "Feb"; "Mar"; "Apr"; "May"; "Jun"; "Jul"; "Aug"; "Sep"; "Oct"; "Nov"; "Dec" |]

    /// `[10/Oct/2000:13:55:36 +0000]`, Apache's `%t`, in UTC.
    let private writeTimestamp (out: IBufferWriter<byte>) (at: DateTimeOffset) =
        let t = at.UtcDateTime
        oneByte out (byte '[')
        twoDigits out t.Day
        oneByte out (byte '/')
        ascii out months[t.Month - 1]
        oneByte out (byte '/')
        twoDigits out (t.Year / 100)
        twoDigits out (t.Year % 100)
        oneByte out (byte ':')
        twoDigits out t.Hour
        oneByte out (byte ':')
        twoDigits out t.Minute
        oneByte out (byte ':')
        twoDigits out t.Second
        ascii out " +0000]"

    /// A timing: whole milliseconds, -1 for a step the request never reached.
    let private milliseconds (out: IBufferWriter<byte>) (name: string) (value: int64) =
        ascii out name
        number out (if value < 0L then -1L else value)

    /// Writes one log line, without the line end, as ASCII (every other byte is escaped) into `out`.
    [<CompiledName("Write")>]
    let write (out: IBufferWriter<byte>) (e: AccessLogEntry) : unit =
        token out e.ClientAddress
        ascii out " - - "
        writeTimestamp out e.Time
        ascii out " \""
        // "%r" is one quoted field: method, target and protocol, each escaped.
        escaped out false e.Method
        oneByte out (byte ' ')
        escaped out false e.Target
        oneByte out (byte ' ')
        escaped out false e.Protocol
        ascii out "\" "
        number out (int64 e.Status)
        oneByte out (byte ' ')
        if e.BytesSent <= 0L then oneByte out (byte '-') else number out e.BytesSent
        oneByte out (byte ' ')
        quoted out e.Referer
        oneByte out (byte ' ')
        quoted out e.UserAgent
        ascii out " app="
        token out e.App
        ascii out " server="
        token out e.Server
        milliseconds out " queue=" e.QueueMs
        milliseconds out " connect=" e.ConnectMs
        milliseconds out " response=" e.ResponseMs
        milliseconds out " total=" e.TotalMs
        ascii out " xff="
        quoted out e.ForwardedFor

    /// One log line, without the line end.
    [<CompiledName("Format")>]
    let format (e: AccessLogEntry) : string =
        let out = ArrayBufferWriter<byte>(256)
        write out e
        Encoding.ASCII.GetString out.WrittenSpan
