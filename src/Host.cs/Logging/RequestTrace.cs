using System.Diagnostics;
using System.Net.Sockets;

namespace Lb.Host.Logging;

/// <summary>
/// The timings of one request for the access log, HAProxy's Tw/Tc/Tr/Tt: queue (waiting for `maxconn` slots),
/// connect (opening a TCP connection to the server, 0 when a pooled one was reused), response (request sent
/// until the server's response headers arrived) and total. Also which app and server, and the body bytes.
/// Kept as a request feature (not in <see cref="HttpContext.Items"/>, which allocates two dictionaries per
/// request) and, for the connect time, in the backend request's options.
/// </summary>
public sealed class RequestTrace
{
    public const string ContextKey = "lb.trace";

    private static readonly HttpRequestOptionsKey<RequestTrace> OptionKey = new(ContextKey);

    private long _queueTicks;
    private long _connectTicks;
    private long _sentAt;
    private long _headersAt;

    public long StartedAt { get; } = Stopwatch.GetTimestamp();
    public DateTimeOffset Time { get; } = DateTimeOffset.UtcNow;
    public string App { get; set; } = "";
    public string Server { get; set; } = "";
    public CountingStream? RequestBody { get; set; }
    public CountingStream? ResponseBody { get; set; }

    public static RequestTrace? Of(HttpContext context) => context.Features.Get<RequestTrace>();

    public static RequestTrace Start(HttpContext context)
    {
        var trace = new RequestTrace();
        context.Features.Set(trace);
        return trace;
    }

    public void AddQueue(long startTimestamp) => Interlocked.Add(ref _queueTicks, Stopwatch.GetTimestamp() - startTimestamp);

    /// <summary>The backend request is about to be sent: remember when, and let the connect callback find us.</summary>
    public void Sending(HttpRequestMessage backendRequest)
    {
        Volatile.Write(ref _sentAt, Stopwatch.GetTimestamp());
        Volatile.Write(ref _headersAt, 0);
        Interlocked.Exchange(ref _connectTicks, 0);
        backendRequest.Options.Set(OptionKey, this);
    }

    public void HeadersReceived() => Volatile.Write(ref _headersAt, Stopwatch.GetTimestamp());

    public long QueueMs => Ms(Interlocked.Read(ref _queueTicks));

    /// <summary>-1 when no request was sent to a server.</summary>
    public long ConnectMs => _sentAt == 0 ? -1 : Ms(Interlocked.Read(ref _connectTicks));

    /// <summary>-1 when no response headers arrived.</summary>
    public long ResponseMs => _sentAt == 0 || _headersAt == 0 ? -1 : Math.Max(0, Ms(_headersAt - _sentAt - Interlocked.Read(ref _connectTicks)));

    public long TotalMs => Ms(Stopwatch.GetTimestamp() - StartedAt);

    private static long Ms(long ticks) => (long)(ticks * 1000.0 / Stopwatch.Frequency);

    /// <summary>
    /// SocketsHttpHandler's connect step, as its default does it (a dual-mode socket, Nagle off), timed and
    /// the time given to the request that asked for the connection. Failures propagate unchanged: the handler
    /// wraps them as a connection error, which the retry policy reads.
    /// </summary>
    public static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancel)
    {
        var started = Stopwatch.GetTimestamp();
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, cancel);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        if (context.InitialRequestMessage.Options.TryGetValue(OptionKey, out var trace))
            Interlocked.Add(ref trace._connectTicks, Stopwatch.GetTimestamp() - started);
        return new NetworkStream(socket, ownsSocket: true);
    }
}

/// <summary>A stream that counts the bytes read from or written to the stream it wraps.</summary>
public sealed class CountingStream(Stream inner) : Stream
{
    private long _count;

    public long Count => Interlocked.Read(ref _count);

    public override bool CanRead => inner.CanRead;
    public override bool CanSeek => false;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => inner.Length;
    public override long Position { get => inner.Position; set => throw new NotSupportedException(); }

    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => Counted(inner.Read(buffer, offset, count));
    public override int Read(Span<byte> buffer) => Counted(inner.Read(buffer));

    public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Counted(await inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Counted(await inner.ReadAsync(buffer, cancellationToken));

    public override void Write(byte[] buffer, int offset, int count)
    {
        inner.Write(buffer, offset, count);
        Interlocked.Add(ref _count, count);
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        Interlocked.Add(ref _count, buffer.Length);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await inner.WriteAsync(buffer, cancellationToken);
        Interlocked.Add(ref _count, buffer.Length);
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    private int Counted(int read)
    {
        if (read > 0)
            Interlocked.Add(ref _count, read);
        return read;
    }
}
