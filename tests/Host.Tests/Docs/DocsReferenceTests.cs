using System.Text.RegularExpressions;
using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.Docs;

/// <summary>
/// docs/config.md traces every keyword to its parse and behaviour functions (STYLE rule 4); a name there that no
/// longer exists, or that only tests call, sends a reader to the wrong place (STYLE rule 14: no twin kept for docs).
/// </summary>
public sealed class DocsReferenceTests
{
    private static readonly string Root = LbProgram.RepositoryRoot;

    // `Module.function` (F#, src/Rules.fs) or `Folder/Class.Member` (C#, src/Host.cs or src/Vrrp.cs).
    private static readonly Regex Reference = new(@"`(?<path>(?:[A-Z][A-Za-z]+/)?)(?<owner>[A-Z][A-Za-z0-9]+)\.(?<member>[A-Za-z][A-Za-z0-9]+)`");

    /// <summary>Names in the docs that are not lb's: .NET and YARP types, placeholders in the docs' own legend.</summary>
    private static readonly HashSet<string> External = ["ForwarderRequestConfig", "HostOptions", "SocketsHttpHandler", "KestrelServerLimits", "HttpClient", "Class", "File", "Module", "Section"];

    private static IEnumerable<(string Owner, string Member, string Path)> References() =>
        Reference.Matches(File.ReadAllText(System.IO.Path.Combine(Root, "docs", "config.md")))
            .Select(m => (m.Groups["owner"].Value, m.Groups["member"].Value, m.Groups["path"].Value.TrimEnd('/')))
            .Where(r => !r.Item1.EndsWith("Tests", StringComparison.Ordinal) && !External.Contains(r.Item1) && r.Item2 is not ("fs" or "cs" or "md"))
            .Distinct();

    private static string[] SourceFiles(string ext) =>
        Directory.GetFiles(System.IO.Path.Combine(Root, "src"), "*" + ext, SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{System.IO.Path.DirectorySeparatorChar}obj{System.IO.Path.DirectorySeparatorChar}")
                        && !f.Contains($"{System.IO.Path.DirectorySeparatorChar}bin{System.IO.Path.DirectorySeparatorChar}"))
            .ToArray();

    private static readonly string[] FSharp = SourceFiles(".fs");
    private static readonly string[] CSharp = SourceFiles(".cs");
    private static readonly Dictionary<string, string[]> Lines = FSharp.Concat(CSharp).ToDictionary(f => f, File.ReadAllLines);

    /// <summary>Where an F# `owner.member` is defined: a `let`/`member` of it in a file that declares module or type `owner`.</summary>
    private static (string File, int Line)? FSharpDefinition(string owner, string member)
    {
        var declares = new Regex($@"^\s*(\[<[^\]]*>\]\s*)?(module|type)\s+(rec\s+)?{owner}\b");
        var defines = new Regex($@"^\s*((let|member|static member|and)\s+(rec\s+|inline\s+|private\s+)*(\w+\.)?{member}\b|(\{{\s*)?{member}\s*:)");
        foreach (var file in FSharp)
        {
            var lines = Lines[file];
            if (!lines.Any(l => declares.IsMatch(l)))
                continue;
            for (var i = 0; i < lines.Length; i++)
                if (defines.IsMatch(lines[i]) && !lines[i].Contains("private"))
                    return (file, i);
        }
        return null;
    }

    private static string Pascal(string name) => char.ToUpperInvariant(name[0]) + name[1..];

    /// <summary>Whether `member` (or its C# compiled name) is used in src/ on any line but its definition.</summary>
    private static bool CalledInSource(string member, (string File, int Line) definition)
    {
        var use = new Regex($@"\b({member}|{Pascal(member)})\b");
        return Lines.Any(kv => kv.Value.Where((line, i) => !(kv.Key == definition.File && i == definition.Line)
                                                            && !line.TrimStart().StartsWith("///", StringComparison.Ordinal)
                                                            && !line.TrimStart().StartsWith("//", StringComparison.Ordinal)
                                                            && !line.Contains("CompiledName(")
                                                            && use.IsMatch(line)).Any());
    }

    [Fact]
    public void Every_function_docs_config_md_names_exists_and_is_called_outside_tests()
    {
        var problems = new List<string>();
        var checkedCount = 0;
        foreach (var (owner, member, path) in References())
        {
            checkedCount++;
            var declaring = new Regex($@"\b(class|record|struct|interface)\s+{owner}\b");
            if (path.Length > 0 || CSharp.Any(f => System.IO.Path.GetFileNameWithoutExtension(f) == owner || Lines[f].Any(declaring.IsMatch)))
            {
                var file = CSharp.FirstOrDefault(f => (System.IO.Path.GetFileNameWithoutExtension(f) == owner || Lines[f].Any(declaring.IsMatch))
                                                     && (path.Length == 0 || f.Contains($"{System.IO.Path.DirectorySeparatorChar}{path}{System.IO.Path.DirectorySeparatorChar}")));
                if (file is null)
                    problems.Add($"{path}/{owner}.{member}: no file {owner}.cs under {path}");
                else if (!Lines[file].Any(l => Regex.IsMatch(l, $@"\b{member}\b")))
                    problems.Add($"{path}/{owner}.{member}: {owner}.cs has no {member}");
                continue;
            }
            if (FSharpDefinition(owner, member) is not { } definition)
                problems.Add($"{owner}.{member}: not defined (public) in src/Rules.fs");
            else if (!CalledInSource(member, definition))
                problems.Add($"{owner}.{member}: defined in {System.IO.Path.GetFileName(definition.File)} but never called in src/");
        }
        Assert.True(checkedCount > 100, $"only {checkedCount} references found: the pattern no longer matches the docs");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
