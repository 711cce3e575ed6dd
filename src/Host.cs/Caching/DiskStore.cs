using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;

namespace Lb.Host.Caching;

/// <summary>
/// The disk store under <c>[cache] dir</c>: one file per key (named by the SHA-256 of the key), at most
/// <c>capacity</c> bytes of files, least recently used deleted first. It survives a restart: opening it indexes
/// the files already there, oldest written first out. Writes and deletes go through one background writer in
/// the order they were asked for; until a file is written, reads are answered from the bytes waiting for it.
/// A file is written to a temporary name and renamed, so a crash never leaves a half-written entry.
/// </summary>
public sealed class DiskStore : IAsyncDisposable
{
    private const string Extension = ".lbc";
    private const string TemporaryExtension = ".tmp";

    private sealed record FileSlot(string Name, long Size);

    private abstract record Operation(string Name);
    private sealed record WriteFile(string Name) : Operation(Name);
    private sealed record DeleteFile(string Name) : Operation(Name);

    private readonly string _dir;
    private readonly ILogger _log;
    private readonly Dictionary<string, LinkedListNode<FileSlot>> _index = new(StringComparer.Ordinal);
    private readonly LinkedList<FileSlot> _recency = new();
    private readonly Dictionary<string, byte[]> _pending = new(StringComparer.Ordinal);
    private readonly Channel<Operation> _operations = Channel.CreateUnbounded<Operation>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _lock = new();
    private readonly Task _writer;
    private long _bytes;

    private DiskStore(string dir, long capacity, ILogger log)
    {
        _dir = dir;
        Capacity = capacity;
        _log = log;
        _writer = Task.Run(WriteLoopAsync);
    }

    public long Capacity { get; }

    /// <summary>Bytes of the files held (written or waiting to be); never above <see cref="Capacity"/>.</summary>
    public long Bytes
    {
        get
        {
            lock (_lock)
                return _bytes;
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
                return _index.Count;
        }
    }

    /// <summary>Creates the folder if needed and indexes the entries a previous run left. Throws IOException or
    /// UnauthorizedAccessException when the folder cannot be created or read.</summary>
    public static DiskStore Open(string dir, long capacity, ILogger log)
    {
        Directory.CreateDirectory(dir);
        var store = new DiskStore(dir, capacity, log);
        var folder = new DirectoryInfo(dir);
        foreach (var leftover in folder.EnumerateFiles("*" + TemporaryExtension))
            leftover.Delete();
        lock (store._lock)
        {
            foreach (var file in folder.EnumerateFiles("*" + Extension).OrderBy(f => f.LastWriteTimeUtc))
            {
                store._index[file.Name] = store._recency.AddFirst(new FileSlot(file.Name, file.Length));
                store._bytes += file.Length;
            }
            store.EvictLocked();
        }
        return store;
    }

    private static string FileName(string key) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key))) + Extension;

    public async ValueTask<CacheItem?> GetAsync(string key, CancellationToken cancel)
    {
        var name = FileName(key);
        byte[]? bytes;
        lock (_lock)
        {
            if (!_index.TryGetValue(name, out var node))
                return null;
            _recency.Remove(node);
            _recency.AddFirst(node);
            _pending.TryGetValue(name, out bytes);
        }
        try
        {
            bytes ??= await File.ReadAllBytesAsync(Path.Combine(_dir, name), cancel);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning("cache: cannot read {File}: {Message}", name, e.Message);
            Forget(name);
            return null;
        }
        if (CacheCodec.Decode(bytes, key) is { } item)
            return item;
        Forget(name);
        return null;
    }

    public void Set(string key, CacheItem item)
    {
        var name = FileName(key);
        var bytes = CacheCodec.Encode(key, item);
        lock (_lock)
        {
            // A replaced file is overwritten by the write below: deleting it first could delete the new one.
            RemoveLocked(name, deleteFile: bytes.Length > Capacity);
            if (bytes.Length > Capacity)
                return;
            _index[name] = _recency.AddFirst(new FileSlot(name, bytes.Length));
            _pending[name] = bytes;
            _bytes += bytes.Length;
            _operations.Writer.TryWrite(new WriteFile(name));
            EvictLocked();
        }
    }

    public void Remove(string key)
    {
        lock (_lock)
            RemoveLocked(FileName(key));
    }

    private void Forget(string name)
    {
        lock (_lock)
            RemoveLocked(name);
    }

    private void EvictLocked()
    {
        while (_bytes > Capacity && _recency.Last is { } oldest)
            RemoveLocked(oldest.Value.Name);
    }

    private void RemoveLocked(string name, bool deleteFile = true)
    {
        if (!_index.Remove(name, out var node))
            return;
        _recency.Remove(node);
        _bytes -= node.Value.Size;
        _pending.Remove(name);
        if (deleteFile)
            _operations.Writer.TryWrite(new DeleteFile(name));
    }

    private async Task WriteLoopAsync()
    {
        await foreach (var operation in _operations.Reader.ReadAllAsync())
        {
            var path = Path.Combine(_dir, operation.Name);
            try
            {
                switch (operation)
                {
                    case WriteFile:
                        byte[]? bytes;
                        lock (_lock)
                            _pending.TryGetValue(operation.Name, out bytes);
                        if (bytes is null)
                            break; // removed or replaced since: a later operation has it
                        var temporary = path + "." + Guid.NewGuid().ToString("N") + TemporaryExtension;
                        await File.WriteAllBytesAsync(temporary, bytes);
                        File.Move(temporary, path, overwrite: true);
                        lock (_lock)
                        {
                            if (_pending.TryGetValue(operation.Name, out var current) && ReferenceEquals(current, bytes))
                                _pending.Remove(operation.Name);
                        }
                        break;
                    case DeleteFile:
                        File.Delete(path);
                        break;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log.LogWarning("cache: cannot update {File}: {Message}", operation.Name, e.Message);
                if (operation is WriteFile)
                    Forget(operation.Name);
            }
        }
    }

    /// <summary>Finishes the writes already asked for, so the next run finds them.</summary>
    public async ValueTask DisposeAsync()
    {
        _operations.Writer.TryComplete();
        await _writer;
    }
}
