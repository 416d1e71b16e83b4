#!/usr/bin/perl
# readme2mdoc.pl: write a manual page in mdoc(7) from a template in man/
# and the parts of README.md that the template names.  README.md is the one
# source of the reference text, so the manual cannot drift from it; the
# template adds only what a manual has and the README has not (NAME, FILES,
# SEE ALSO).
#
#   perl tools/readme2mdoc.pl README.md DATE TEMPLATE [TEMPLATE...] > PAGE
#
# The first TEMPLATE is the page to write.  The others are read for their
# directives only: a README link to a section that another page includes
# becomes a reference to that page (".Xr ringlb.json 5").  DATE replaces
# "@DATE@" (".Dd @DATE@").  Directives are comment lines of the template,
# their arguments quoted when they have spaces:
#
#   .\" @include HEADING [-title] [-intro] [-except TEXT]
#	the README section HEADING (the heading's text, without the #s):
#	its text, then its subsections as .Ss.  -title puts .Ss HEADING
#	first; -intro stops at the first subsection; -except leaves out the
#	paragraph that starts with TEXT.
#   .\" @usage HEADING PROGRAM
#	a SYNOPSIS from the usage block of that section (a code block whose
#	lines start with PROGRAM).  Where such a block is met by @include,
#	its "  -x ARG  text" lines become a list of options.
#   .\" @paragraph HEADING TEXT
#	the one paragraph of that section that starts with TEXT.
#
# Markdown is taken as the README writes it: paragraphs, "- " lists,
# fenced code, pipe tables, `code`, **strong**, *emphasis* and [links].
# Tables become tagged lists: the first column is the tag, a last column
# named Meaning (or effect, does, Notes) the text, the others a line of
# "Name: value" before it.  The output passes mandoc -T lint -W style.
use strict;
use warnings;

my ($readme, $date, $tmpl, @others) = @ARGV;
die "usage: $0 README.md DATE TEMPLATE [TEMPLATE...]\n" unless defined $tmpl;
$date = '' unless defined $date;

# mdoc macros: an argument spelt like one must be escaped to stay text.
my %MACRO = map { $_ => 1 } qw(
	%A %B %C %D %I %J %N %O %P %Q %R %T %U %V Ac Ad An Ao Ap Aq Ar At Bc
	Bd Bf Bk Bl Bo Bq Brc Bro Brq Bsx Bt Bx Cd Cm D1 Db Dc Dd Dl Do Dq Dt
	Dv Dx Ec Ed Ef Ek El Em En Eo Er Es Ev Ex Fa Fc Fd Fl Fn Fo Fr Ft Fx
	Hf Ic In It Lb Li Lk Lp Me Ms Mt Nd Nm No Ns Nx Oc Oo Op Os Ot Ox Pa
	Pc Pf Po Pp Pq Qc Ql Qo Qq Re Rs Rv Sc Sh Sm So Sq Ss St Sx Sy Ta Tn
	Ud Ux Va Vt Xc Xo Xr br ll sp);

# ---- README: sections ----

open(my $fh, '<', $readme) or die "$readme: $!\n";
my @lines = <$fh>;
close($fh);
chomp(@lines);
utf8::decode($_) for @lines;

# Headings, in order: level, title, slug (GitHub's anchor), line index.
my @heads;
{
	my $fence = 0;
	for my $i (0 .. $#lines) {
		$fence = !$fence if $lines[$i] =~ /^```/;
		next if $fence;
		next unless $lines[$i] =~ /^(#+)\s+(.*?)\s*$/;
		push @heads, { level => length($1), title => $2,
			       slug => slug($2), line => $i, n => scalar @heads };
	}
}

sub slug
{
	my ($t) = @_;
	$t = lc($t);
	$t =~ s/[^a-z0-9 _-]//g;
	$t =~ s/ /-/g;
	return $t;
}

sub find_head
{
	my ($title) = @_;
	for my $h (@heads) {
		return $h if $h->{title} eq $title;
	}
	die "$readme: no section \"$title\"\n";
}

# Lines of a section: its own text, and with $all its subsections too.
sub section_lines
{
	my ($h, $all) = @_;
	my $end = scalar @lines;
	for my $n ($h->{n} + 1 .. $#heads) {
		my $o = $heads[$n];
		if ($o->{level} <= $h->{level} || !$all) {
			$end = $o->{line};
			last;
		}
	}
	return @lines[$h->{line} + 1 .. $end - 1];
}

# Headings under $h (deeper levels), in order.
sub subsections
{
	my ($h) = @_;
	my @s;
	for my $n ($h->{n} + 1 .. $#heads) {
		last if $heads[$n]{level} <= $h->{level};
		push @s, $heads[$n];
	}
	return @s;
}

# ---- templates: which page shows which section ----

# slug -> { page => "ringlb.json 5", title => 1 if shown as .Ss/.Sh }
my %where;
my $self_page;

sub read_template
{
	my ($path, $is_self) = @_;
	open(my $t, '<', $path) or die "$path: $!\n";
	my @t = <$t>;
	close($t);
	chomp(@t);
	my $page;
	for (@t) {
		$page = lc("$1 $2") if /^\.Dt\s+(\S+)\s+(\S+)/;
	}
	die "$path: no .Dt line\n" unless defined $page;
	for (@t) {
		next unless /^\.\\"\s+\@include\s+(.*)$/;
		my ($title, %opt) = include_args($1);
		my $h = find_head($title);
		$where{$h->{slug}} //= { page => $page, title => $opt{-title} };
		next if $opt{-intro};
		for my $s (subsections($h)) {
			$where{$s->{slug}} //= { page => $page, title => 1 };
		}
	}
	$self_page = $page if $is_self;
	return @t;
}

sub directive_args
{
	my ($s) = @_;
	my @a;
	while ($s =~ /\G\s*(?:"((?:[^"]|"")*)"|(\S+))/gc) {
		my $w = defined $1 ? $1 : $2;
		$w =~ s/""/"/g;
		push @a, $w;
	}
	return @a;
}

# HEADING -title -intro -except TEXT: the heading and a hash of options.
sub include_args
{
	my ($title, @a) = directive_args(@_);
	my %opt;
	while (@a) {
		my $o = shift @a;
		die "$tmpl: unknown \@include option $o\n"
		    unless $o =~ /^-(title|intro|except)$/;
		$opt{$o} = $o eq '-except' ? shift @a : 1;
	}
	return ($title, %opt);
}

my @tmpl = read_template($tmpl, 1);
read_template($_, 0) for @others;

# ---- markdown blocks ----

# A list of blocks: {t => 'p', text}, {t => 'code', lines},
# {t => 'table', head => [...], rows => [[...]...]},
# {t => 'list', items => [[para text, ...], ...]}, {t => 'h', head}.
sub blocks
{
	my @l = @_;
	my @b;
	my $i = 0;
	my $starts = qr/^(```|\||#+\s|- )/;
	while ($i < @l) {
		my $x = $l[$i];
		if ($x =~ /^\s*$/) {
			$i++;
		} elsif ($x =~ /^(#+)\s+(.*?)\s*$/) {
			push @b, { t => 'h', level => length($1), title => $2 };
			$i++;
		} elsif ($x =~ /^```/) {
			my @c;
			$i++;
			push @c, $l[$i++] while $i < @l && $l[$i] !~ /^```/;
			$i++;
			push @b, { t => 'code', lines => \@c };
		} elsif ($x =~ /^\|/) {
			my @r;
			push @r, cells($l[$i++]) while $i < @l && $l[$i] =~ /^\|/;
			my $head = shift @r;
			shift @r if @r && join('', @{$r[0]}) =~ /^[-: ]*$/;
			push @b, { t => 'table', head => $head, rows => \@r };
		} elsif ($x =~ /^- /) {
			my @items;
			while ($i < @l && $l[$i] =~ /^- (.*)$/) {
				my @paras = ($1);
				$i++;
				for (;;) {
					if ($i < @l && $l[$i] =~ /^  +(\S.*)$/) {
						$paras[-1] .= " $1";
					} elsif ($i < @l && $l[$i] !~ /^\s*$/ &&
						 $l[$i] !~ $starts) {
						$paras[-1] .= " $l[$i]";
					} elsif ($i + 1 < @l && $l[$i] =~ /^\s*$/ &&
						 $l[$i + 1] =~ /^  +(\S.*)$/) {
						push @paras, $1;
						$i++;
					} else {
						last;
					}
					$i++;
				}
				push @items, \@paras;
				$i++ while $i < @l && $l[$i] =~ /^\s*$/ &&
				    $i + 1 < @l && $l[$i + 1] =~ /^- /;
			}
			push @b, { t => 'list', items => \@items };
		} else {
			my $p = $x;
			$i++;
			while ($i < @l && $l[$i] !~ /^\s*$/ && $l[$i] !~ $starts) {
				$p .= " $l[$i]";
				$i++;
			}
			$p =~ s/^\s+//;
			push @b, { t => 'p', text => $p };
		}
	}
	return @b;
}

# The cells of one table row, split on | outside `code`.
sub cells
{
	my ($row) = @_;
	$row =~ s/^\|//;
	$row =~ s/\|\s*$//;
	my @c = ('');
	my $code = 0;
	for my $ch (split //, $row) {
		$code = !$code if $ch eq '`';
		if ($ch eq '|' && !$code) {
			push @c, '';
		} else {
			$c[-1] .= $ch;
		}
	}
	s/^\s+|\s+$//g for @c;
	return \@c;
}

# ---- inline markup ----

# Pieces: [text => s], [code => s], [strong => s], [em => s],
# [Sx => title], [Xr => name, section].
sub inline
{
	my ($s, $style) = @_;
	$style //= 'text';
	my @p;
	while (length $s) {
		if ($s =~ s/^`([^`]+)`//) {
			push @p, ['code', $1];
		} elsif ($s =~ s/^\*\*(.+?)\*\*//) {
			push @p, inline($1, 'strong');
		} elsif ($s =~ s/^\*([^*\s](?:[^*]*[^*\s])?)\*//) {
			push @p, inline($1, 'em');
		} elsif ($s =~ s/^\[((?:`[^`]*`|[^\]`])+)\]\(([^)\s]+)\)//) {
			push @p, link_pieces($1, $2, $style);
		} elsif ($s =~ s/^([^`*\[]+)//) {
			push @p, [$style, $1];
		} else {
			$s =~ s/^(.)//;
			push @p, [$style, $1];
		}
	}
	return @p;
}

# A link is its text, and where the target is in another page (or in no
# page) a word saying where.
sub link_pieces
{
	my ($text, $href, $style) = @_;
	my @p = inline($text, $style);
	return @p unless $href =~ /^#(.*)$/;
	my $w = $where{$1};
	my ($h) = grep { $_->{slug} eq $1 } @heads;
	die "$readme: link to a missing section: $href\n" unless $h;
	(my $plain = $h->{title}) =~ s/`//g;
	(my $said = $text) =~ s/`//g;
	if ($w && $w->{page} eq $self_page) {
		return (['Sx', $plain]) if $w->{title} && lc($said) eq lc($plain);
		return @p;
	}
	return (@p, ['text', ' in '], ['Xr', split(/ /, $w->{page})]) if $w;
	return (@p, ['text', ' in the README']);
}

# Words: lists of pieces with no space between them; a code span is whole
# even with spaces inside.
sub words
{
	my @w = ([]);
	for my $p (@_) {
		my ($kind, $s) = @$p;
		if ($kind eq 'text' || $kind eq 'strong' || $kind eq 'em') {
			for my $part (split /(\s+)/, $s) {
				next if $part eq '';
				if ($part =~ /^\s+$/) {
					push @w, [] if @{$w[-1]};
				} else {
					push @{$w[-1]}, [$kind, $part];
				}
			}
		} else {
			push @{$w[-1]}, $p;
		}
	}
	pop @w unless @{$w[-1]};
	return @w;
}

sub plain_word
{
	my ($w) = @_;
	return !grep { $_->[0] ne 'text' } @$w;
}

# ---- mdoc output ----

my @out;

sub esc_chars
{
	my ($s) = @_;
	$s =~ s/\\/\\e/g;
	$s =~ s/([^\x00-\x7f])/sprintf('\\[u%04X]', ord($1))/ge;
	return $s;
}

sub esc_text
{
	my ($s) = @_;
	$s = esc_chars($s);
	$s = "\\&$s" if $s =~ /^[.']/;
	return $s;
}

sub esc_arg
{
	my ($s) = @_;
	my $q = $s =~ /[\s"]/;
	$s = esc_chars($s);
	if ($q) {
		$s =~ s/"/""/g;
		return "\"$s\"";
	}
	return "\\&$s" if $MACRO{$s} || $s =~ /^[.,:;()\[\]|?!]$/;
	return $s;
}

# Macro-line units of one word: [macro, args...] or [delim => c].
my %STYLE_MACRO = (code => 'Ic', strong => 'Sy', em => 'Em', text => 'No');

sub word_units
{
	my @p = map { [@$_] } @{$_[0]};
	my (@open, @close, @u);
	my $styled = qr/^(?:text|strong|em)$/;
	if ($p[0][0] =~ $styled && $p[0][1] =~ s/^([(\[]+)//) {
		push @open, ['delim', $_] for split //, $1;
		shift @p if $p[0][1] eq '';
	}
	if (@p && $p[-1][0] =~ $styled && $p[-1][1] =~ s/([.,:;)\]?!]+)$//) {
		push @close, ['delim', $_] for split //, $1;
		pop @p if $p[-1][1] eq '';
	}
	for my $i (0 .. $#p) {
		push @u, ['Ns'] if $i > 0;
		my ($kind, @a) = @{$p[$i]};
		if ($kind eq 'Sx' || $kind eq 'Xr') {
			push @u, [$kind, @a];
		} else {
			push @u, [$STYLE_MACRO{$kind}, $a[0]];
		}
	}
	return (@open, @u, @close);
}

# Serialize units to the arguments of one macro line.  Runs of the same
# style merge ("Sy a b c"); opening delimiters go after the first macro.
sub units_line
{
	my @u = @_;
	my @lead;
	push @lead, shift @u while @u && $u[0][0] eq 'delim';
	my @tok;
	my $cur = '';
	for my $x (@u) {
		my ($m, @a) = @$x;
		if ($m eq 'delim') {
			push @tok, $a[0];
			$cur = 'delim';
		} elsif ($m eq 'Ns') {
			push @tok, 'Ns';
			$cur = '';
		} elsif ($m eq 'Xr') {
			push @tok, 'Xr', map { esc_arg($_) } @a;
			$cur = '';
		} elsif ($m eq 'Sx') {
			push @tok, 'Sx', esc_title($a[0]);
			$cur = '';
		} elsif ($m eq $cur) {
			push @tok, esc_arg($a[0]);
		} else {
			push @tok, $m, esc_arg($a[0]);
			$cur = $m;
		}
		if (@lead && @tok) {
			my $name = shift @tok;
			@tok = ($name, map({ $_->[1] } @lead), @tok);
			@lead = ();
		}
	}
	return @tok;
}

# Emit a paragraph of inline pieces: plain words on text lines (a new line
# for each sentence), words with markup on macro lines.
sub emit_inline
{
	my @w = words(@_);
	my @line;
	my $flush = sub {
		return unless @line;
		my $s = join(' ', @line);
		# A line ending in an abbreviation is not the end of a sentence.
		my $abbr = $s =~ /\b(?:e\.g|i\.e|vs)\.$/;
		push @out, esc_text($s) . ($abbr ? '\&' : '');
		@line = ();
	};
	my $i = 0;
	while ($i < @w) {
		my $w = $w[$i];
		if (plain_word($w)) {
			my $s = join('', map { $_->[1] } @$w);
			$flush->() if @line &&
			    length(esc_text(join(' ', @line, $s))) > 72;
			push @line, $s;
			my $next = $i + 1 < @w ? $w[$i + 1] : undef;
			my $eos = $s =~ /[.?!][)"']*$/ && $next &&
			    plain_word($next) && $next->[0][1] =~ /^[A-Z]/;
			$flush->() if $eos;
			$i++;
			next;
		}
		$flush->();
		my @u = word_units($w);
		$i++;
		# Merge a run of single-piece words of one style into one line.
		if (@$w == 1 && $w->[0][0] ne 'code' && $w->[0][0] ne 'Sx' &&
		    $w->[0][0] ne 'Xr') {
			while ($i < @w && @{$w[$i]} == 1 &&
			       $w[$i][0][0] eq $w->[0][0]) {
				push @u, word_units($w[$i]);
				$i++;
			}
		}
		push @out, '.' . join(' ', units_line(@u));
	}
	$flush->();
}

sub emit_text
{
	emit_inline(inline($_[0]));
}

sub macro_line
{
	my ($m, @w) = @_;
	my @u = map { word_units($_) } @w;
	return ".$m" unless @u;
	return ".$m " . join(' ', units_line(@u));
}

# Literal lines, no longer than mandoc's 80 bytes: a longer line goes on
# with an escaped newline, which joins the two input lines.
sub emit_literal
{
	push @out, '.Bd -literal -offset indent';
	for my $l (@_) {
		my $s = esc_text($l);
		while (length($s) > 78) {
			my $cut = 78;
			# Never split an escape sequence.
			$cut-- while $cut > 1 && substr($s, 0, $cut) =~
			    /\\(?:\[[^\]]*|[e&]?)$/;
			push @out, substr($s, 0, $cut) . '\\';
			$s = substr($s, $cut);
		}
		push @out, $s;
	}
	push @out, '.Ed';
}

sub emit_table
{
	my ($b) = @_;
	my @head = @{$b->{head}};
	my $body = $head[-1] =~ /^(meaning|effect|does|notes)$/i;
	push @out, '.Bl -tag -width Ds';
	for my $r (@{$b->{rows}}) {
		my @c = @$r;
		push @out, macro_line('It', words(inline($c[0])));
		my (@attr, $v);
		my $last = $body ? $#head - 1 : $#head;
		for my $k (1 .. $last) {
			next unless defined $c[$k] && $c[$k] ne '';
			my $label = @attr ? lc($head[$k]) : ucfirst($head[$k]);
			($v = $c[$k]) =~ s/\.$//;
			push @attr, ['text', (@attr ? '; ' : '') . "$label: "],
			    inline($v);
		}
		if (@attr) {
			# A period ends it, unless the last value ends in one.
			(my $plain = $v) =~ s/`//g;
			my @end = $plain =~ /[.?!]$/ ? () : (['text', '.']);
			emit_inline(@attr, @end);
			push @out, '.br' if $body && $c[$#head] ne '';
		}
		emit_text($c[$#head]) if $body && $c[$#head] ne '';
	}
	push @out, '.El';
}

# A usage block: its program lines, its "  -x ARG  text" option lines.
sub usage_block
{
	my ($b) = @_;
	return unless $b->{t} eq 'code' && @{$b->{lines}};
	my ($first) = $b->{lines}[0] =~ /^(\S+)/;
	return unless defined $first && $b->{lines}[0] =~ /\[/;
	(my $prog = $first) =~ s{.*/}{};
	my (@use, @opt);
	for (@{$b->{lines}}) {
		if (/^\S*\Q$prog\E\s+(.*)$/) {
			push @use, $1;
		} elsif (/^\s+(-\S+(?: [A-Z]\S*)?)\s{2,}(.*)$/) {
			push @opt, [$1, $2];
		}
	}
	return { prog => $prog, use => \@use, opt => \@opt };
}

# One usage line as SYNOPSIS macros: [ ] groups, -x and --x flags,
# CAPITALS as arguments, lower-case words as command words.
sub synopsis_line
{
	my ($s) = @_;
	my @tok = $s =~ /\[|\]|\||[^\s\[\]|]+/g;
	my @lines = ('.Nm');
	my $depth = 0;
	my @cur;
	for my $t (@tok) {
		if ($t eq '[') {
			push @cur, 'Oo' if $depth;
			$depth++;
			next;
		}
		if ($t eq ']') {
			$depth--;
			if ($depth) {
				push @cur, 'Oc';
			} else {
				push @lines, '.Op ' . join(' ', @cur);
				@cur = ();
			}
			next;
		}
		my @m = synopsis_word($t);
		if ($depth) {
			push @cur, @m;
		} else {
			push @lines, '.' . join(' ', @m);
		}
	}
	return @lines;
}

sub synopsis_word
{
	my ($t) = @_;
	return ('|') if $t eq '|';
	return ('No', '...') if $t eq '...';
	return ('Fl', esc_arg(substr($t, 1))) if $t =~ /^-/;
	if ($t =~ /^([A-Z][A-Z0-9_]*)=([A-Z][A-Z0-9_]*)$/) {
		return ('Ar', $1, 'Ns', '=', 'Ns', 'Ar', $2);
	}
	return ('Ar', esc_arg($t)) if $t =~ /^[A-Z]/;
	return ('Cm', esc_arg($t));
}

sub emit_options
{
	my ($u) = @_;
	return unless @{$u->{opt}};
	push @out, '.Bl -tag -width Ds';
	for my $o (@{$u->{opt}}) {
		my ($flag, $arg) = split / /, $o->[0];
		my $it = '.It Fl ' . esc_arg(substr($flag, 1));
		$it .= ' Ar ' . esc_arg($arg) if defined $arg;
		push @out, $it;
		emit_text($o->[1]);
	}
	push @out, '.El';
}

# Emit blocks.  $state: 'none' at the start of a section or item, 'text'
# after a paragraph, 'block' after a list or display.
# A section title, in .Ss or .Sx: mandoc takes a closing bracket at its end
# for a delimiter ("listeners[]"), \& keeps it text.
sub esc_title
{
	my ($t) = @_;
	my $a = esc_arg($t);
	$a .= '\\&' if $a =~ /[.,:;)\]?!]$/ && length($t) > 1;
	return $a;
}

sub title_line
{
	my ($m, $t) = @_;
	$t =~ s/`//g;
	return ".$m " . esc_title($t);
}

sub emit_blocks
{
	my ($level, $opt, @b) = @_;
	# What came before this include: a paragraph needs .Pp after text.
	my $state = !@out || $out[-1] =~ /^\.(?:Sh|Ss|It)\b/ ? 'none' : 'text';
	for my $b (@b) {
		if ($b->{t} eq 'h') {
			die "$readme: \"$b->{title}\": too deep for a manual\n"
			    if $b->{level} > $level + 1;
			push @out, title_line('Ss', $b->{title});
			$state = 'none';
			next;
		}
		if ($b->{t} eq 'p') {
			next if defined $opt->{-except} &&
			    index($b->{text}, $opt->{-except}) == 0;
			push @out, '.Pp' if $state ne 'none';
			emit_text($b->{text});
			$state = 'text';
			next;
		}
		if ($b->{t} eq 'code') {
			my $u = usage_block($b);
			if ($u) {
				next unless @{$u->{opt}};
				emit_options($u);
			} else {
				emit_literal(@{$b->{lines}});
			}
		} elsif ($b->{t} eq 'table') {
			emit_table($b);
		} elsif ($b->{t} eq 'list') {
			push @out, '.Bl -bullet';
			for my $item (@{$b->{items}}) {
				push @out, '.It';
				my $first = 1;
				for my $p (@$item) {
					push @out, '.Pp' unless $first;
					emit_text($p);
					$first = 0;
				}
			}
			push @out, '.El';
		}
		$state = 'block';
	}
}

sub do_include
{
	my ($title, %opt) = @_;
	my $h = find_head($title);
	if ($opt{-title}) {
		push @out, title_line('Ss', $h->{title});
	}
	my $level = $opt{-title} ? $h->{level} + 1 : $h->{level};
	emit_blocks($level, \%opt, blocks(section_lines($h, !$opt{-intro})));
}

sub do_usage
{
	my ($title, $prog) = @_;
	my $h = find_head($title);
	for my $b (blocks(section_lines($h, 0))) {
		my $u = usage_block($b);
		next unless $u && $u->{prog} eq $prog;
		push @out, synopsis_line($_) for @{$u->{use}};
		return;
	}
	die "$readme: \"$title\": no usage block of $prog\n";
}

sub do_paragraph
{
	my ($title, $start) = @_;
	my $h = find_head($title);
	for my $b (blocks(section_lines($h, 0))) {
		next unless $b->{t} eq 'p' && index($b->{text}, $start) == 0;
		emit_text($b->{text});
		return;
	}
	die "$readme: \"$title\": no paragraph \"$start\"\n";
}

for my $l (@tmpl) {
	if ($l =~ /^\.\\"\s+\@include\s+(.*)$/) {
		do_include(include_args($1));
	} elsif ($l =~ /^\.\\"\s+\@usage\s+(.*)$/) {
		my ($title, $prog) = directive_args($1);
		do_usage($title, $prog);
	} elsif ($l =~ /^\.\\"\s+\@paragraph\s+(.*)$/) {
		my ($title, $start) = directive_args($1);
		do_paragraph($title, $start);
	} else {
		(my $x = $l) =~ s/\@DATE\@/$date/g;
		push @out, $x;
	}
}

print "$_\n" for @out;
