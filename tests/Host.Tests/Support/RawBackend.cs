using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Lb.Host.Tests.Support;

/// <summary>
/// A backend written on a bare TCP listener on loopback, for what a Kestrel backend would hide: it records each
/// request head byte for byte (Kestrel would answer `Expect: 100-continue` itself and parse the headers), never
/// sends a 100 Continue, and answers with the exact response head the test gives (`Connection: X-Foo` included).
/// One request per connection: every response carries `Connection: close` and the connection is closed after it.
/// </summary>
public sealed class RawBackend : IAsyncDisposable
{
    /// <summary>One request as received: its head (request line and header lines, CRLF-separated) and its body.</summary>
    public sealed record Received(string Head, byte[] Body)
    {
        public string Target => Head.Split(' ')[1];

        /// <summary>The values of every header line called <paramref name="name"/>.</summary>
        public IReadOnlyList<string> Header(string name) =>
            Head.Split("\r\n").Skip(1).Select(line => line.Split(':', 2)).Where(p => p.Length == 2 && p[0].Equals(name, StringComparison.OrdinalIgnoreCase))
                .Select(p => p[1].Trim()).ToList();
    }

    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(15);
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly ConcurrentQueue<Received> _received = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    /// <param name="extraResponseHeaders">Header lines (without CRLF) added to every response, after Content-Length.</param>
    public RawBackend(params string[] extraResponseHeaders)
    {
        _listener.Start();
        ExtraResponseHeaders = extraResponseHeaders;
        _accepting = AcceptAsync();
    }

    public string[] ExtraResponseHeaders { get; }
    public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
    public IReadOnlyList<Received> Requests => _received.ToArray();

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            _ = Task.Run(() => AnswerAsync(client));
        }
    }

    private async Task AnswerAsync(TcpClient client)
    {
        using (client)
        {
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            cancel.CancelAfter(ReadTimeout);
            var stream = client.GetStream();
            var buffer = new MemoryStream();
            var chunk = new byte[16 * 1024];
            try
            {
                int headEnd;
                while ((headEnd = IndexOf(buffer, "\r\n\r\n"u8)) < 0)
                {
                    var n = await stream.ReadAsync(chunk, cancel.Token);
                    if (n == 0)
                        return;
                    buffer.Write(chunk, 0, n);
                }
                var head = Encoding.Latin1.GetString(buffer.GetBuffer(), 0, headEnd);
                var request = new Received(head, []);
                var bodyStart = headEnd + 4;
                // The body: Content-Length bytes, or a chunked body up to its last chunk (small bodies only).
                bool Complete()
                {
                    var have = (int)buffer.Length - bodyStart;
                    if (request.Header("Content-Length") is [var length, ..])
                        return have >= long.Parse(length);
                    if (request.Header("Transfer-Encoding").Any(v => v.Contains("chunked", StringComparison.OrdinalIgnoreCase)))
                        return Encoding.Latin1.GetString(buffer.GetBuffer(), bodyStart, have).Contains("0\r\n\r\n", StringComparison.Ordinal);
                    return true;
                }
                while (!Complete())
                {
                    var n = await stream.ReadAsync(chunk, cancel.Token);
                    if (n == 0)
                        break;
                    buffer.Write(chunk, 0, n);
                }
                var body = buffer.ToArray()[bodyStart..];
                _received.Enqueue(request with { Body = body });
                var text = $"received {body.Length} bytes";
                var response = new StringBuilder($"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {text.Length}\r\n");
                foreach (var line in ExtraResponseHeaders)
                    response.Append(line).Append("\r\n");
                response.Append("Connection: close\r\n\r\n").Append(text);
                await stream.WriteAsync(Encoding.Latin1.GetBytes(response.ToString()), cancel.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException)
            {
            }
        }
    }

    private static int IndexOf(MemoryStream buffer, ReadOnlySpan<byte> needle) =>
        buffer.GetBuffer().AsSpan(0, (int)buffer.Length).IndexOf(needle);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
