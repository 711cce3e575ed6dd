using System.Globalization;
using System.Text;
using Xunit.Sdk;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// A strict reader of the Prometheus text exposition format 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats):
/// `# HELP name text`, `# TYPE name counter|gauge|histogram|summary|untyped`, samples
/// `name{label="value",...} value [timestamp]` with `\\`, `\"` and `\n` escapes in label values. Every sample
/// must belong to a family whose TYPE came first, and a family's lines must be contiguous. Anything else throws.
/// </summary>
public static class StatsPrometheusText
{
    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    public sealed record Family(string Name, string Type, string Help, List<Sample> Samples);

    public static Dictionary<string, Family> Parse(string text)
    {
        var families = new Dictionary<string, Family>();
        Family? current = null;
        var lineNumber = 0;
        foreach (var line in text.Split('\n'))
        {
            lineNumber++;
            if (line.Length == 0)
                continue;
            if (line.StartsWith("# HELP ", StringComparison.Ordinal) || line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var rest = line[7..];
                var space = rest.IndexOf(' ');
                var name = space < 0 ? rest : rest[..space];
                var value = space < 0 ? "" : rest[(space + 1)..];
                RequireName(name, lineNumber);
                if (!families.TryGetValue(name, out var family))
                {
                    if (current is not null && current.Name == name)
                        family = current;
                    else
                        families[name] = family = new Family(name, "untyped", "", []);
                }
                else if (family != current)
                {
                    throw new XunitException($"line {lineNumber}: family {name} is not contiguous");
                }
                current = line[2] == 'H' ? (families[name] = family with { Help = value }) : (families[name] = family with { Type = RequireType(value, lineNumber) });
                continue;
            }
            if (line.StartsWith('#'))
                continue;
            var sample = ParseSample(line, lineNumber);
            if (current is null || !BelongsTo(sample.Name, current))
                throw new XunitException($"line {lineNumber}: sample {sample.Name} outside its family's TYPE block");
            current.Samples.Add(sample);
        }
        return families;
    }

    private static bool BelongsTo(string sample, Family family) =>
        sample == family.Name
        || (family.Type is "histogram" or "summary" && (sample == family.Name + "_sum" || sample == family.Name + "_count" || sample == family.Name + "_bucket"));

    private static string RequireType(string type, int line) =>
        type is "counter" or "gauge" or "histogram" or "summary" or "untyped" ? type : throw new XunitException($"line {line}: bad TYPE {type}");

    private static void RequireName(string name, int line)
    {
        if (name.Length == 0 || !(char.IsAsciiLetter(name[0]) || name[0] is '_' or ':') || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':'))
            throw new XunitException($"line {line}: bad metric name '{name}'");
    }

    private static Sample ParseSample(string line, int lineNumber)
    {
        var i = 0;
        while (i < line.Length && line[i] != '{' && line[i] != ' ')
            i++;
        var name = line[..i];
        RequireName(name, lineNumber);
        var labels = new Dictionary<string, string>();
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                var start = i;
                while (line[i] != '=')
                    i++;
                var label = line[start..i];
                if (label.Length == 0 || !(char.IsAsciiLetter(label[0]) || label[0] == '_') || !label.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
                    throw new XunitException($"line {lineNumber}: bad label name '{label}'");
                i++;
                if (line[i] != '"')
                    throw new XunitException($"line {lineNumber}: label value not quoted");
                i++;
                var value = new StringBuilder();
                while (line[i] != '"')
                {
                    if (line[i] == '\\')
                    {
                        i++;
                        value.Append(line[i] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            _ => throw new XunitException($"line {lineNumber}: bad escape \\{line[i]}"),
                        });
                    }
                    else
                    {
                        value.Append(line[i]);
                    }
                    i++;
                }
                i++;
                if (!labels.TryAdd(label, value.ToString()))
                    throw new XunitException($"line {lineNumber}: label {label} twice");
                if (line[i] == ',')
                    i++;
                else if (line[i] != '}')
                    throw new XunitException($"line {lineNumber}: expected , or }}");
            }
            i++;
        }
        if (i >= line.Length || line[i] != ' ')
            throw new XunitException($"line {lineNumber}: no value");
        var parts = line[(i + 1)..].Split(' ');
        if (parts.Length > 2 || (parts.Length == 2 && !long.TryParse(parts[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)))
            throw new XunitException($"line {lineNumber}: bad value or timestamp '{line[(i + 1)..]}'");
        var number = parts[0] switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            var v when double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
            var v => throw new XunitException($"line {lineNumber}: bad value '{v}'"),
        };
        return new Sample(name, labels, number);
    }

    /// <summary>The value of the one sample of <paramref name="family"/> with exactly these label values.</summary>
    public static double Value(this Dictionary<string, Family> families, string family, params (string Name, string Value)[] labels)
    {
        if (!families.TryGetValue(family, out var f))
            throw new XunitException($"no metric family {family}");
        var matches = f.Samples.Where(s => labels.All(l => s.Labels.TryGetValue(l.Name, out var v) && v == l.Value)).ToList();
        return matches.Count == 1 ? matches[0].Value : throw new XunitException($"{family}{{{string.Join(",", labels)}}}: {matches.Count} samples");
    }

    /// <summary>The sum over samples of <paramref name="family"/> whose labels include these.</summary>
    public static double Sum(this Dictionary<string, Family> families, string family, params (string Name, string Value)[] labels) =>
        families[family].Samples.Where(s => labels.All(l => s.Labels.TryGetValue(l.Name, out var v) && v == l.Value)).Sum(s => s.Value);
}
