namespace Lb.Host.Caching;

/// <summary>
/// The response body on its way to the client, copied aside for the cache: every write goes to the client
/// unchanged; the copy stops (<see cref="Overflowed"/>) once it would exceed <c>limit</c> bytes.
/// </summary>
public sealed class CaptureStream(Stream inner, long limit) : Stream
{
    private MemoryStream? _copy = new();

    public Stream Inner => inner;

    /// <summary>The body was larger than the limit: nothing was kept.</summary>
    public bool Overflowed => _copy is null;

    public long Captured => _copy?.Length ?? 0;

    public byte[] ToArray() => _copy?.ToArray() ?? throw new InvalidOperationException("the body was too large to keep");

    private void Keep(ReadOnlySpan<byte> bytes)
    {
        if (_copy is null)
            return;
        if (_copy.Length + bytes.Length > limit)
        {
            _copy = null;
            return;
        }
        _copy.Write(bytes);
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        Keep(buffer);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await inner.WriteAsync(buffer, cancellationToken);
        Keep(buffer.Span);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
