using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;

namespace Lb.Host.Tests.Support;

/// <summary>One HTTP/1.1 response as it came off the wire.</summary>
public sealed record RawResponse(int Status, string StatusLine, IReadOnlyList<KeyValuePair<string, string>> Headers, string Body)
{
    public string? Header(string name) =>
        Headers.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

    public IEnumerable<string> HeaderValues(string name) =>
        Headers.Where(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value);
}

/// <summary>
/// An HTTP/1.1 client over a bare TCP socket (optionally wrapped in TLS) that writes the request line exactly
/// as given. HttpClient and System.Uri normalise `..`, `%2e` and `//`; the path tests need the raw bytes.
/// </summary>
public static class RawHttp
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    public static Task<RawResponse> GetAsync(int port, string target, string? tlsThumbprint,
        IEnumerable<string>? extraHeaders = null)
    {
        var request = new StringBuilder();
        request.Append($"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
        foreach (var header in extraHeaders ?? [])
            request.Append(header).Append("\r\n");
        request.Append("\r\n");
        return SendAsync(port, request.ToString(), tlsThumbprint);
    }

    /// <summary>A connection to lb on loopback, in TLS (HTTP/1.1 by ALPN) when a thumbprint is given; disposing the
    /// stream closes the connection.</summary>
    public static async Task<Stream> OpenAsync(int port, string? tlsThumbprint, CancellationToken cancel)
    {
        var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync(IPAddress.Loopback, port, cancel);
            Stream stream = tcp.GetStream();
            if (tlsThumbprint is null)
                return stream;
            var tls = new SslStream(stream, leaveInnerStreamOpen: false);
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                ApplicationProtocols = [SslApplicationProtocol.Http11],
                RemoteCertificateValidationCallback = PinnedTls.Accept(tlsThumbprint),
            }, cancel);
            return tls;
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    public static async Task<RawResponse> SendAsync(int port, string request, string? tlsThumbprint)
    {
        using var cancel = new CancellationTokenSource(Timeout);
        var stream = await OpenAsync(port, tlsThumbprint, cancel.Token);
        await using (stream)
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request), cancel.Token);
            await stream.FlushAsync(cancel.Token);
            using var received = new MemoryStream();
            // `Connection: close`: the server ends the response by closing; the token bounds the wait.
            await stream.CopyToAsync(received, cancel.Token);
            return Parse(received.ToArray());
        }
    }

    public static RawResponse Parse(byte[] bytes)
    {
        var headerEnd = IndexOf(bytes, "\r\n\r\n"u8);
        if (headerEnd < 0)
            throw new InvalidDataException($"no complete response head in {bytes.Length} bytes: {Encoding.ASCII.GetString(bytes)}");
        var head = Encoding.ASCII.GetString(bytes, 0, headerEnd).Split("\r\n");
        var statusLine = head[0];
        var status = int.Parse(statusLine.Split(' ')[1]);
        var headers = head.Skip(1)
            .Select(line => line.Split(':', 2))
            .Select(parts => KeyValuePair.Create(parts[0].Trim(), parts.Length > 1 ? parts[1].Trim() : ""))
            .ToList();
        var body = bytes.AsSpan(headerEnd + 4).ToArray();
        var chunked = headers.Any(h => h.Key.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) &&
                                       h.Value.Contains("chunked", StringComparison.OrdinalIgnoreCase));
        if (chunked)
            body = Dechunk(body);
        return new RawResponse(status, statusLine, headers, Encoding.UTF8.GetString(body));
    }

    /// <summary>RFC 9112 §7.1 chunked coding: size line, data, CRLF, ... until a zero-size chunk.</summary>
    private static byte[] Dechunk(byte[] body)
    {
        using var output = new MemoryStream();
        var at = 0;
        while (at < body.Length)
        {
            var lineEnd = IndexOf(body.AsSpan(at), "\r\n"u8);
            if (lineEnd < 0)
                throw new InvalidDataException("truncated chunk size line");
            var sizeText = Encoding.ASCII.GetString(body, at, lineEnd).Split(';')[0].Trim();
            var size = Convert.ToInt32(sizeText, 16);
            at += lineEnd + 2;
            if (size == 0)
                break;
            if (at + size > body.Length)
                throw new InvalidDataException("truncated chunk");
            output.Write(body, at, size);
            at += size + 2;
        }
        return output.ToArray();
    }

    private static int IndexOf(ReadOnlySpan<byte> haystack, ReadOnlySpan<byte> needle) => haystack.IndexOf(needle);
}
