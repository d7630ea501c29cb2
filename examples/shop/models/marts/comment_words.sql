-- Word frequencies over order comments.
SELECT word, COUNT(*) AS occurrences
FROM (
    SELECT unnest(SPLIT(regexp_replace(lower(comment), '[^a-zà-ÿ ]', ' ', 'g'), ' ')) AS word
    FROM {{ source('shop_exports', 'comments') }}
    WHERE comment IS NOT NULL
)
WHERE length(word) >= {{ var('min_word_length') }}
GROUP BY word
